import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { startSplit } from '../src/split/topology.ts';
import { freePorts } from '../test/helpers/wait.ts';
import { MODULE_NAMES, type ModuleName } from '../src/registry.ts';
import type { CeilingOptions } from './order-ceiling.ts';
import { ROOT } from './procs.ts';
import { LOAD_COLUMNS, ratio, table } from './report.ts';
import {
  freshPgDatabase,
  json,
  seedProducts,
  seedUsers,
  startToko,
  TOKO_COMMAND,
  tokoEnv,
  type Target,
  type Users,
} from './targets.ts';
import { load, type LoadSpec, type RunFigures } from './wrk.ts';

export interface OrderOptions {
  adminUrl: string;
  seconds: number;
  connections: number[];
  withSplit: boolean;
}

type TargetName = 'ceiling' | 'toko' | 'toko-embedded' | 'split';

export interface OrderRow extends RunFigures {
  scenario: string;
  target: TargetName;
  connections: number;
  /** After the run: ms until the order outbox was empty and every confirmed order had its one notification; undefined = not within 30 s. */
  drainMs?: number;
  /** Notifications sent minus orders confirmed for the bench customer after the run (0 = exactly one each). */
  notificationGap?: number;
}

interface Shop {
  target: Target;
  users: Users;
  hot: string;
  catalogue: string[];
}

const SCENARIOS = [
  { name: 'hot product, 1 line', spread: false, lines: 1 },
  { name: 'hot products, 3 lines', spread: false, lines: 3 },
  { name: 'spread, 1 line', spread: true, lines: 1 },
  { name: 'spread, 3 lines', spread: true, lines: 3 },
];

function ceiling(o: CeilingOptions): Promise<{ rps: number; p50: number; p99: number; errors: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'bench/order-ceiling.ts', JSON.stringify(o)],
      { cwd: ROOT },
      (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout.trim().split('\n').at(-1)!))),
    );
  });
}

/** Waits until the order outbox is empty and notifications sent = orders confirmed + the welcome mail; ms taken, or undefined after 30 s. */
async function drain(shop: Shop): Promise<{ ms?: number; gap: number }> {
  const started = performance.now();
  let gap = 0;
  for (;;) {
    const [pending, confirmed, sent] = await Promise.all([
      json<{ total: number }>(`${shop.target.url}/api/v1/admin/events/order?status=pending&limit=1`, {
        token: shop.users.adminToken,
      }),
      json<{ total: number }>(`${shop.target.url}/api/v1/orders?status=confirmed&limit=1`, {
        token: shop.users.customerToken,
      }),
      json<{ total: number }>(`${shop.target.url}/api/v1/notifications?status=sent&limit=1`, {
        token: shop.users.customerToken,
      }),
    ]);
    gap = sent.body.total - 1 - confirmed.body.total;
    if (pending.body.total === 0 && gap === 0) return { ms: Math.round(performance.now() - started), gap };
    if (performance.now() - started > 30_000) return { gap };
    await sleep(50);
  }
}

async function shopAt(target: Target): Promise<Shop> {
  const users = await seedUsers(target.url, 1);
  const { hot, catalogue } = await seedProducts(target.url, users.adminToken);
  // Three hot products for the 3-line scenario: the same three in every order.
  const more = [];
  for (let i = 0; i < 2; i++) {
    const p = await json<{ id: string }>(`${target.url}/api/v1/products`, {
      token: users.adminToken,
      body: { name: `Bench hot ${i}`, price: 1_000_000, stock: 50_000_000, category: 'bench' },
    });
    more.push(p.body.id);
  }
  return { target, users, hot, catalogue: [hot, ...more, ...catalogue] };
}

/**
 * POST /api/v1/orders against the bare-SQL order ceiling, toko on
 * PostgreSQL, toko embedded and the split topology (embedded, as npm run split) through the
 * gateway: one hot product or lines spread over the demo catalogue, 1 and 3
 * lines, at each connection count. Targets take turns within each scenario.
 * After each toko run the bench waits for the outbox to drain and checks
 * that every confirmed order got exactly one notification.
 */
export async function benchOrders(o: OrderOptions): Promise<{ rows: OrderRow[] }> {
  const tokoDb = await freshPgDatabase(o.adminUrl, 'toko_bench');
  const ceilingDb = await freshPgDatabase(o.adminUrl, 'ceiling_bench');
  const splitDir = mkdtempSync(path.join(tmpdir(), 'toko-bench-split-'));
  const stops: (() => Promise<void>)[] = [];
  try {
    const shops = await startTargets(o, tokoDb.url, splitDir, stops);
    const print = table(`orders: POST /api/v1/orders, ${o.seconds} s per run (targets take turns)`, [
      { name: 'scenario', width: 22, left: true },
      { name: 'conns', width: 5 },
      { name: 'target', width: 14, left: true },
      { name: 'orders/s', width: 8 },
      ...LOAD_COLUMNS,
      { name: 'drain ms', width: 8 },
      { name: '% ceil', width: 7 },
    ]);
    const rows: OrderRow[] = [];
    for (const s of SCENARIOS) {
      for (const connections of o.connections) {
        const c0 = await ceiling({
          databaseUrl: ceilingDb.url,
          connections,
          seconds: o.seconds,
          lines: s.lines,
          spread: s.spread,
        });
        const base: OrderRow = { scenario: s.name, target: 'ceiling', connections, ...c0, non2xx: 0 };
        rows.push(base);
        print([s.name, connections, 'bare SQL', base.rps, base.p50, base.p99, base.errors, 0, undefined, 100]);
        for (const [target, shop] of Object.entries(shops) as [TargetName, Shop][]) {
          const row = await orderRun(shop, target, s, connections, o.seconds);
          rows.push(row);
          const { rps, p50, p99, errors, non2xx, drainMs } = row;
          print([
            s.name,
            connections,
            target,
            rps,
            p50,
            p99,
            errors,
            non2xx,
            drainMs ?? 'stuck',
            ratio(rps * 100, base.rps),
          ]);
        }
      }
    }
    return { rows };
  } finally {
    for (const stop of stops.reverse()) await stop();
    for (const db of [tokoDb, ceilingDb]) await db.drop();
    rmSync(splitDir, { recursive: true, force: true });
  }
}

/** toko on PostgreSQL, embedded, and (with `withSplit`) split as npm run split runs it, each with its shop; `stops` gets how to stop each. */
async function startTargets(
  o: OrderOptions,
  tokoDbUrl: string,
  splitDir: string,
  stops: (() => Promise<void>)[],
): Promise<Partial<Record<TargetName, Shop>>> {
  const [tokoPort, embeddedPort, gw, ...servicePorts] = await freePorts(3 + MODULE_NAMES.length);
  const shops: Partial<Record<TargetName, Shop>> = {};
  const toko = await startToko('toko', tokoPort!, tokoDbUrl);
  stops.push(() => toko.stop());
  shops.toko = await shopAt(toko);
  const embedded = await startToko('toko-embedded', embeddedPort!, undefined);
  stops.push(() => embedded.stop());
  shops['toko-embedded'] = await shopAt(embedded);
  if (!o.withSplit) return shops;
  // As npm run split runs it: compiled services, one embedded database hosted here.
  const env = tokoEnv(0, { QUEUE_PREFIX: `bench${randomBytes(3).toString('hex')}` });
  for (const k of ['PORT', 'HOST']) delete env[k];
  const topology = await startSplit({
    dataDir: splitDir,
    gatewayPort: gw!,
    basePort: 0,
    ports: Object.fromEntries(MODULE_NAMES.map((m, i) => [m, servicePorts[i]!])) as Record<ModuleName, number>,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    env,
    command: TOKO_COMMAND[1],
    embedded: {
      templateDir: process.env.EMBEDDED_TEMPLATE_DIR ?? path.join(homedir(), '.cache', 'toko'),
      logger: pino({ level: 'warn' }),
    },
  });
  stops.push(() => topology.close());
  shops.split = await shopAt({ name: 'split', url: topology.gatewayUrl, stop: () => topology.close() });
  return shops;
}

/** One toko target's run of a scenario: a second of warm-up, drained, then the measured run, drained. */
async function orderRun(
  shop: Shop,
  target: TargetName,
  s: (typeof SCENARIOS)[number],
  connections: number,
  seconds: number,
): Promise<OrderRow> {
  const ids = s.spread ? shop.catalogue.slice(3) : shop.catalogue.slice(0, s.lines);
  const lines = ids.map((id) => `{"productId":"${id}","quantity":1}`).join(',');
  const spec: Omit<LoadSpec, 'seconds'> = {
    url: `${shop.target.url}/api/v1/orders`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${shop.users.customerToken}` },
    ...(s.spread
      ? {
          ids,
          bodyLua: `'{"items":[' .. table.concat((function() local t = {} for i, id in ipairs(pick(${s.lines})) do t[i] = '{"productId":"' .. id .. '","quantity":1}' end return t end)(), ',') .. ']}'`,
        }
      : { body: `{"items":[${lines}]}` }),
    connections,
  };
  // A second of warm-up (JIT, pools, caches), not counted; its events drain before the run.
  await load({ ...spec, seconds: 1 });
  await drain(shop);
  const r = await load({ ...spec, seconds });
  const drained = await drain(shop);
  return { scenario: s.name, target, connections, ...r, drainMs: drained.ms, notificationGap: drained.gap };
}
