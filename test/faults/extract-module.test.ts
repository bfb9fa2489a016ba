import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULE_NAMES, type ModuleName } from '../../src/config.ts';
import { moveData, dropCopy, type MoveReport } from '../../src/split/move-data.ts';
import { route } from '../../src/split/route.ts';
import { renderGatewayConfig } from '../../src/split/topology.ts';
import { newUser } from '../helpers/http.ts';
import { freePorts, waitFor } from '../helpers/wait.ts';
import { FAST_RECOVERY, Shop, report, type Notification, type Order } from './harness.ts';

/**
 * Issue 26: the product module extracted from a running monolith (2 replicas
 * behind the gateway) and then returned, under an open-loop load of reads,
 * sign-ups and orders: the product service started on today's data, the
 * gateway's product routes moved to it by a reload, the monolith's replicas
 * rolled one at a time to calling it, its data moved to a second PostgreSQL
 * database (`moveData`, as `npm run move-data` runs it), and every step
 * undone in reverse. No GET fails, no order fails after one retry with its
 * Idempotency-Key, nothing is oversold, each confirmed order has exactly one
 * notification.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const tag = randomBytes(4).toString('hex');
const dbUrl = (name: string) => Object.assign(new URL(ADMIN_URL), { pathname: `/${name}` }).toString();
const DBS = [`ext_x_${tag}_main`, `ext_x_${tag}_product`];
const [MAIN, TARGET] = DBS.map(dbUrl) as [string, string];
const RATE = 60;
const STOCK = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(tmpdir(), 'toko-extract-'));
const conf = path.join(dir, 'gateway', 'nginx.conf');

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(sql).finally(() => c.end());
}

const keys = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

/** One toko process (the compiled JavaScript, as `npm start` runs it) on a fixed port. */
class Proc {
  child?: ChildProcess;
  stderr = '';
  constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }
  async start(env: Record<string, string>): Promise<void> {
    const child = spawn(process.execPath, [path.join('dist', 'src', 'main.js')], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: String(this.port), ...this.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    await waitFor(
      `${env.MODULES ?? 'toko'} on ${this.port} ready`,
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${this.stderr}`);
        const res = await fetch(`${this.url}/health/ready`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      90_000,
      200,
    );
  }
  /** SIGTERM, and the drain it starts, to the end. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(30_000).then(() => child.kill('SIGKILL'))]);
  }
}

interface Load {
  gets: { ok: number; failed: string[]; resentAfterReset: number };
  signups: { ok: number; failed: string[] };
  orders: { key: string; first: number; final: number }[];
  /** Each order's first attempt that failed (status, time, answer), resent once with its Idempotency-Key. */
  retried: string[];
  sent: number;
  startedAt: number;
  endedAt: number;
}

/**
 * A keep-alive client, as a browser or an SDK is; a GET is resent once only when its reused connection was reset
 * before any answer, and on a new connection (`fresh`), as a browser does: a gateway reload closes every idle
 * connection of its old workers, so another pooled one may be reset too (a CI run once lost a GET that way).
 */
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
function request(
  base: string,
  method: string,
  p: string,
  opts: { body?: unknown; headers?: Record<string, string>; fresh?: boolean } = {},
): Promise<{ status: number; text: string; resetBeforeAnswer?: boolean }> {
  return new Promise((resolve) => {
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      `${base}${p}`,
      {
        method,
        agent: opts.fresh ? false : agent,
        headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...opts.headers },
        timeout: 30_000,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', (e) => resolve({ status: 0, text: String(e) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e: NodeJS.ErrnoException) =>
      resolve({
        status: 0,
        text: `${e.code ?? ''} ${e.message}`,
        resetBeforeAnswer: req.reusedSocket && e.code === 'ECONNRESET',
      }),
    );
    if (body) req.write(body);
    req.end();
  });
}

let nginx: ChildProcess | undefined;
let gateway = '';
const monolith: Proc[] = [];
const productService: Proc[] = [];
const ports = { gateway: 0, userBalancer: 0, productBalancer: 0 };
const shop = new Shop(() => gateway);

beforeAll(async () => {
  execFileSync(process.execPath, ['scripts/ensure-build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  for (const d of DBS) await admin(`create database "${d}"`);
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = (await freePorts(1))[0]!;
  const shared = {
    ...FAST_RECOVERY,
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL: MAIN,
    REDIS_URL,
    QUEUE_PREFIX: `ext${tag}`,
    SERVICE_KEY: randomBytes(24).toString('hex'),
    JWT_PRIVATE_KEY: keys.privateKey,
    JWT_PUBLIC_KEY: keys.publicKey,
    REPLICAS: '2',
    DRAIN_DELAY_MS: '5000',
    TRUSTED_PROXIES: '127.0.0.1',
    REGISTER_MAX_PER_CLIENT: '1000000',
    DB_POOL_MAX: '4',
  };
  for (let i = 0; i < 2; i++) monolith.push(new Proc((await freePorts(1))[0]!, shared));
  for (let i = 0; i < 2; i++) productService.push(new Proc((await freePorts(1))[0]!, shared));
  await monolith[0]!.start({});
  await monolith[1]!.start({});
  mkdirSync(path.dirname(conf), { recursive: true });
  const all = monolith.map((m) => m.port);
  writeFileSync(
    conf,
    renderGatewayConfig({
      dataDir: dir,
      gatewayPort: ports.gateway,
      ports: Object.fromEntries(MODULE_NAMES.map((m) => [m, all])) as Record<ModuleName, number[]>,
      balancers: { user: ports.userBalancer, product: ports.productBalancer },
    }),
  );
  nginx = spawn('nginx', ['-c', conf, '-p', path.dirname(conf)], { stdio: 'ignore' });
  gateway = `http://127.0.0.1:${ports.gateway}`;
  await waitFor(
    'the gateway',
    async () => ((await request(gateway, 'GET', '/health')).status === 200 ? true : undefined),
    20_000,
    100,
  );
}, 240_000);

afterAll(async () => {
  await Promise.all([...monolith, ...productService].map((p) => p.stop()));
  if (nginx && nginx.exitCode === null) {
    const exited = once(nginx, 'exit');
    nginx.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
  }
  agent.destroy();
  for (const d of DBS) await admin(`drop database if exists "${d}" with (force)`).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
}, 120_000);

/** Who calls product, and where: the monolith replicas roll one at a time (SIGTERM, drain, start on the same port). */
async function rollMonolith(env: Record<string, string>): Promise<void> {
  for (const m of monolith) {
    await m.stop();
    await m.start(env);
  }
}

const everyProductReplica = () => productService.map((p) => `127.0.0.1:${p.port}`).join(',');
const everyMonolithReplica = () => monolith.map((p) => `127.0.0.1:${p.port}`).join(',');
const silent = pino({ level: 'silent' });

/** The whole extraction, and its return, step by step as docs/topologies.md lists them. */
async function extractAndReturn(moves: MoveReport[], steps: string[]): Promise<void> {
  const step = (s: string) => steps.push(`${s} @${Math.round(performance.now())}`);
  for (const p of productService)
    await p.start({ MODULES: 'product', USER_SERVICE_URL: `http://127.0.0.1:${ports.userBalancer}` });
  step('1 product service started (2 replicas, on the data it has today)');
  await route({ module: 'product', to: everyProductReplica(), conf });
  step('2 gateway product routes → product service');
  await rollMonolith({
    MODULES: 'user,order,notification',
    PRODUCT_SERVICE_URL: `http://127.0.0.1:${ports.productBalancer}`,
  });
  step('3 monolith rolled to calling product by PRODUCT_SERVICE_URL');
  moves.push(await moveData({ module: 'product', from: MAIN, to: TARGET, logger: silent }));
  step('4 product data moved to its own database');
  await sleep(3000);
  moves.push(await moveData({ module: 'product', from: TARGET, to: MAIN, logger: silent }));
  step('back 4 product data moved back');
  await rollMonolith({ MODULES: MODULE_NAMES.join(','), PRODUCT_SERVICE_URL: '' });
  step('back 3 monolith rolled to hosting product');
  await route({ module: 'product', to: everyMonolithReplica(), conf });
  step('back 2 gateway product routes → monolith');
  await sleep(5000);
  for (const p of productService) await p.stop();
  step('back 1 product service stopped');
  await dropCopy({ module: 'product', url: TARGET });
}

/** What the gateway logged about its upstreams, at most 6 lines; a refused connect (the next replica takes the request) and the skipped replica it leads to are left out. */
function gatewayErrors(): string[] {
  const log = path.join(dir, 'gateway', 'error.log');
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8')
    .split('\n')
    .filter((l) => /upstream/.test(l) && !/Connection refused|temporarily disabled/.test(l))
    .slice(0, 6)
    .map((l) => l.slice(0, 300));
}

interface Actors {
  adminToken: string;
  products: string[];
  customers: { id: string; token: string }[];
}

/** One request of the open-loop schedule: 14 in 20 reads, 3 sign-ups, 3 orders. */
async function one(i: number, a: Actors, load: Load): Promise<void> {
  const kind = i % 20;
  if (kind < 14) {
    const p = kind % 2 ? `/api/v1/products/${a.products[i % a.products.length]}` : '/api/v1/products?limit=5';
    let res = await request(gateway, 'GET', p);
    if (res.status === 0 && res.resetBeforeAnswer) {
      load.gets.resentAfterReset++;
      res = await request(gateway, 'GET', p, { fresh: true });
    }
    if (res.status === 200) load.gets.ok++;
    else load.gets.failed.push(`${res.status} ${p} @${Math.round(performance.now())} ${res.text.slice(0, 160)}`);
  } else if (kind < 17) {
    const res = await request(gateway, 'POST', '/api/v1/users/register', { body: newUser() });
    if (res.status === 201) load.signups.ok++;
    else load.signups.failed.push(`${res.status} @${Math.round(performance.now())} ${res.text.slice(0, 160)}`);
  } else {
    const c = a.customers[i % a.customers.length]!;
    const key = `ext-${tag}-${i}`;
    const place = () =>
      request(gateway, 'POST', '/api/v1/orders', {
        body: { items: [{ productId: a.products[i % a.products.length], quantity: 1 }] },
        headers: { authorization: `Bearer ${c.token}`, 'idempotency-key': key },
      });
    const answer = await place();
    const first = answer.status;
    let final = first;
    if (first === 0 || first >= 500) {
      load.retried.push(`${first} @${Math.round(performance.now())} ${answer.text.slice(0, 160)}`);
      await sleep(1000);
      final = (await place()).status;
    }
    load.orders.push({ key, first, final });
  }
}

/** Offers RATE requests a second on a fixed schedule (open loop: a slow answer does not slow the offer) until `done`. */
async function runLoad(a: Actors, done: Promise<void>, max: number): Promise<Load> {
  const load: Load = {
    gets: { ok: 0, failed: [], resentAfterReset: 0 },
    signups: { ok: 0, failed: [] },
    orders: [],
    retried: [],
    sent: 0,
    startedAt: performance.now(),
    endedAt: 0,
  };
  let finished = false;
  void done.finally(() => (finished = true));
  const inFlight: Promise<void>[] = [];
  for (let i = 0; !finished && i < max; i++) {
    const due = load.startedAt + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    inFlight.push(one(i, a, load));
    load.sent++;
  }
  load.endedAt = performance.now();
  await Promise.all(inFlight);
  return load;
}

async function settle(a: Actors) {
  const everyone = async () =>
    (await Promise.all(a.customers.map((c) => shop.all<Order>(`/api/v1/orders?userId=${c.id}`, a.adminToken)))).flat();
  const orders = await waitFor(
    'every order settled',
    async () => {
      const all = await everyone();
      return all.every((o) => o.status !== 'pending') ? all : undefined;
    },
    60_000,
    500,
  );
  const confirmed = orders.filter((o) => o.status === 'confirmed');
  const notes = async () =>
    (
      await Promise.all(
        a.customers.map((c) => shop.all<Notification>(`/api/v1/notifications?userId=${c.id}`, a.adminToken)),
      )
    )
      .flat()
      .filter((n) => n.template === 'order-confirmed');
  await waitFor(
    'a notification per confirmed order',
    async () => ((await notes()).length >= confirmed.length ? true : undefined),
    60_000,
    500,
  );
  await sleep(2000);
  const final = await notes();
  const perOrder = confirmed.map((o) => final.filter((n) => n.body.includes(o.id)).length);
  const stocks = await Promise.all(a.products.map((p) => shop.stock(p)));
  const sold = a.products.map((p) => confirmed.flatMap((o) => o.items).filter((l) => l.productId === p).length);
  return { orders, confirmed, perOrder, stocks, sold, notifications: final.length };
}

describe('extracting a module from the running monolith (issue 26)', () => {
  it('extracts product and returns it under load with no failed request', async () => {
    const adminToken = await shop.admin();
    const a: Actors = {
      adminToken,
      products: [
        await shop.product(adminToken, STOCK),
        await shop.product(adminToken, STOCK),
        await shop.product(adminToken, STOCK),
      ],
      customers: [await shop.customer(), await shop.customer(), await shop.customer(), await shop.customer()],
    };
    const moves: MoveReport[] = [];
    const steps: string[] = [];
    const started = performance.now();
    const scenario = extractAndReturn(moves, steps);
    // Bounded by count: at RATE a second, no more than 4 minutes of load, whatever the machine.
    const load = await runLoad(
      a,
      scenario.then(() => sleep(2000)).then(() => undefined),
      RATE * 240,
    );
    await scenario;
    const s = await settle(a);
    const orderFailures = load.orders.filter((o) => o.final === 0 || o.final >= 500);
    report('extract product and return it under load (monolith ×2 behind the gateway)', {
      steps,
      seconds: Math.round((performance.now() - started) / 1000),
      offeredPerSecond: RATE,
      sent: load.sent,
      achievedPerSecond: Math.round((load.sent * 1000) / (load.endedAt - load.startedAt)),
      gets: { ok: load.gets.ok, failed: load.gets.failed, resentAfterReset: load.gets.resentAfterReset },
      signups: load.signups,
      orders: {
        sent: load.orders.length,
        firstAttemptFailed: load.retried,
        failedAfterRetry: orderFailures,
        answered201: load.orders.filter((o) => o.final === 201).length,
        answered409: load.orders.filter((o) => o.final === 409).length,
      },
      confirmed: s.confirmed.length,
      notifications: s.notifications,
      stock: s.stocks,
      sold: s.sold,
      writeFreezeMs: moves.map((m) => m.freezeMs),
      lockAttempts: moves.map((m) => m.lockAttempts),
      rowsCopied: moves.map((m) => ({ snapshot: m.copied, delta: m.delta })),
      gatewayUpstreamErrors: gatewayErrors(),
    });
    expect(load.gets.failed).toEqual([]);
    expect(orderFailures).toEqual([]);
    expect(load.signups.failed.filter((f) => f.startsWith('500'))).toEqual([]);
    // Nothing oversold: every unit is on the shelf or in a confirmed order.
    expect(s.stocks.map((st, i) => st + s.sold[i]!)).toEqual(a.products.map(() => STOCK));
    expect(s.perOrder.every((n) => n === 1)).toBe(true);
    expect(moves).toHaveLength(2);
    expect(moves.every((m) => m.tables.some((t) => t.table === 'products' && t.rows > 0))).toBe(true);
  }, 300_000);
});
