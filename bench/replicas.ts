import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSplit, type SplitTopology } from '../src/split/topology.ts';
import { freePorts } from '../test/helpers/wait.ts';
import { MODULE_NAMES, type ModuleName } from '../src/registry.ts';
import { LOAD_COLUMNS, median, ratio, table } from './report.ts';
import { freshPgDatabase, json, seedProducts, seedUsers, TOKO_COMMAND, tokoEnv, type Users } from './targets.ts';
import { processCost } from './procs.ts';
import { load, type LoadSpec, type RunFigures } from './wrk.ts';

export interface ReplicaOptions {
  adminUrl: string;
  seconds: number;
  rounds: number;
  connections: number;
}

export interface ReplicaRow extends RunFigures {
  scenario: string;
  replicas: number;
}

export interface Invalidation {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * What an order costs the service processes (node) with `replicas` of each, under `connections`: their CPU
 * (user + system) and context switches over a timed run, per order placed.
 */
export interface OrderCost {
  replicas: number;
  connections: number;
  ordersPerSecond: number;
  serviceCpuMsPerOrder: number;
  switchesPerOrder: number;
}

interface Running {
  topology: SplitTopology;
  users: Users;
  catalogue: string[];
  stop(): Promise<void>;
}

/** The split topology on PostgreSQL with `n` replicas of every service, as `npm run split -- --replicas n` starts it. */
async function startReplicas(n: number, adminUrl: string): Promise<Running> {
  const db = await freshPgDatabase(adminUrl, `toko_replicas${n}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'toko-bench-replicas-'));
  const ports = await freePorts(1 + MODULE_NAMES.length * (n + 1));
  const env = tokoEnv(0, {
    DATABASE_URL: db.url,
    QUEUE_PREFIX: `bench${randomBytes(3).toString('hex')}`,
    DB_POOL_MAX: '4',
  });
  for (const k of ['PORT', 'HOST']) delete env[k];
  const topology = await startSplit({
    dataDir: dir,
    gatewayPort: ports[0]!,
    basePort: 0,
    ports: Object.fromEntries(
      MODULE_NAMES.map((m, i) => [m, Array.from({ length: n }, (_, r) => ports[1 + i * n + r]!)]),
    ) as Record<ModuleName, number[]>,
    balancerPorts: Object.fromEntries(
      MODULE_NAMES.map((m, i) => [m, ports[1 + MODULE_NAMES.length * n + i]!]),
    ) as Partial<Record<ModuleName, number>>,
    replicas: Object.fromEntries(MODULE_NAMES.map((m) => [m, n])) as Record<ModuleName, number>,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    env,
    command: TOKO_COMMAND[1],
  });
  const users = await seedUsers(topology.gatewayUrl, 1);
  const { hot, catalogue } = await seedProducts(topology.gatewayUrl, users.adminToken);
  return {
    topology,
    users,
    catalogue: [hot, ...catalogue],
    stop: async () => {
      await topology.close();
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Warm-up per scenario and replica. Measured with the order load on 2 cores: after 1 s of warm-up 2 replicas
 * kept 57 % of 1 replica's orders, with V8's baseline code, inline-cache misses and its optimising compiler
 * high in a system-wide profile of the 2-replica run only; after 30 s 65-78 %, with the two profiles alike.
 */
const WARM_SECONDS_PER_REPLICA = 15;

const ORDERS = {
  name: 'POST order, spread',
  spec: (r: Running): Omit<LoadSpec, 'seconds' | 'connections'> => ({
    url: `${r.topology.gatewayUrl}/api/v1/orders`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${r.users.customerToken}` },
    ids: r.catalogue.slice(1),
    bodyLua: `'{"items":[{"productId":"' .. pick(1)[1] .. '","quantity":1}]}'`,
  }),
};

const SCENARIOS: { name: string; spec: (r: Running) => Omit<LoadSpec, 'seconds' | 'connections'> }[] = [
  { name: 'GET product by id', spec: (r) => ({ url: `${r.topology.gatewayUrl}/api/v1/products/${r.catalogue[1]}` }) },
  { name: 'GET products page', spec: (r) => ({ url: `${r.topology.gatewayUrl}/api/v1/products?limit=20` }) },
  ORDERS,
];

/**
 * Each process serves about as many requests before it is timed (n replicas: n times as long), so neither
 * topology is measured while V8 is still compiling its hot paths: a replica sees 1/n of the load.
 */
async function warmUp(s: (typeof SCENARIOS)[number], topologies: Running[], connections: number): Promise<void> {
  for (const [i, r] of topologies.entries())
    await load({ ...s.spec(r), connections, seconds: WARM_SECONDS_PER_REPLICA * (i + 1) });
}

/**
 * The CPU and context switches of every service process over one timed order run, per order. Taken with 1 and
 * 2 replicas at the bench's connections, and with 1 replica at 1/16 of them: a process's share of the load,
 * not the replicas as such, is what sets its cost per order (docs/performance.md, Replicas).
 */
async function orderCost(r: Running, connections: number, seconds: number): Promise<OrderCost> {
  const replicas = r.topology.replicas(MODULE_NAMES[0]!);
  const pids = MODULE_NAMES.flatMap((m) =>
    Array.from({ length: r.topology.replicas(m) }, (_, i) => r.topology.pid(m, i + 1)),
  ).filter((p): p is number => p !== undefined);
  const spec = { ...ORDERS.spec(r), connections };
  await load({ ...spec, seconds: 1 });
  const before = pids.map(processCost);
  const run = await load({ ...spec, seconds });
  const after = pids.map(processCost);
  const orders = Math.max(1, run.requests - run.non2xx - run.errors);
  const sum = (k: 'cpuS' | 'switches') => after.reduce((t, a, i) => t + a[k] - before[i]![k], 0);
  return {
    replicas,
    connections,
    ordersPerSecond: run.rps,
    serviceCpuMsPerOrder: Math.round((sum('cpuS') * 1000 * 100) / orders) / 100,
    switchesPerOrder: Math.round((sum('switches') * 10) / orders) / 10,
  };
}

/** `orderCost` with 1 and 2 replicas at the bench's connections, and with 1 replica at a sixteenth of them; printed. */
async function orderCosts(one: Running, two: Running, o: ReplicaOptions): Promise<OrderCost[]> {
  const costs = [
    await orderCost(one, o.connections, o.seconds),
    await orderCost(two, o.connections, o.seconds),
    await orderCost(one, Math.max(1, o.connections / 16), o.seconds),
  ];
  process.stdout.write('\nwhat an order costs the service processes (CPU and context switches, per order):\n');
  for (const c of costs)
    process.stdout.write(
      `  ${c.replicas} replica(s), ${c.connections} connections: ${c.ordersPerSecond} orders/s, ${c.serviceCpuMsPerOrder} ms CPU, ${c.switchesPerOrder} switches\n`,
    );
  return costs;
}

/**
 * How long a price change through one product replica takes to be seen by the
 * other (whose by-id cache held the old price), counted from the moment the
 * PATCH on replica 1 answered: poll replica 2 every millisecond or so.
 * `samples` changes.
 */
async function invalidation(r: Running, samples: number): Promise<Invalidation> {
  const id = r.catalogue[1]!;
  const [a, b] = [r.topology.serviceUrl('product', 1), r.topology.serviceUrl('product', 2)];
  const took: number[] = [];
  for (let i = 0; i < samples; i++) {
    const price = 1_000_000 + i + 1;
    await json(`${b}/api/v1/products/${id}`); // b caches the current price
    const res = await json(`${a}/api/v1/products/${id}`, {
      method: 'PATCH',
      token: r.users.adminToken,
      body: { price },
    });
    if (res.status !== 200) throw new Error(`PATCH answered ${res.status}`);
    const started = performance.now();
    for (;;) {
      const seen = await json<{ price: number }>(`${b}/api/v1/products/${id}`);
      if (seen.body.price === price) break;
      if (performance.now() - started > 5000) throw new Error('the other replica kept the old price for 5 s');
      await sleep(1);
    }
    took.push(performance.now() - started);
  }
  took.sort((x, y) => x - y);
  const at = (q: number) => Math.round(took[Math.min(took.length - 1, Math.floor(took.length * q))]! * 10) / 10;
  return { samples, p50: at(0.5), p99: at(0.99), max: at(1) };
}

/**
 * npm run bench -- replicas: reads and orders through the gateway with 1 and
 * with 2 replicas of every service (split, PostgreSQL, Redis), the two
 * topologies taking turns, and how fast a change made on one replica reaches
 * the other. On 2 cores a second replica cannot add speed; the question is
 * what it costs (target: 2 replicas keep at least 80 % of 1 replica's
 * throughput).
 */
export async function benchReplicas(o: ReplicaOptions) {
  const one = await startReplicas(1, o.adminUrl);
  const two = await startReplicas(2, o.adminUrl).catch(async (err: unknown) => {
    await one.stop();
    throw err;
  });
  try {
    const print = table(
      `replicas: through the gateway, ${o.seconds} s per run, ${o.connections} connections, median of ${o.rounds}`,
      [
        { name: 'scenario', width: 20, left: true },
        { name: 'replicas', width: 8 },
        { name: 'req/s', width: 8 },
        ...LOAD_COLUMNS,
        { name: '% of 1', width: 7 },
      ],
    );
    const rows: ReplicaRow[] = [];
    for (const s of SCENARIOS) {
      const runs: Record<number, RunFigures[]> = { 1: [], 2: [] };
      await warmUp(s, [one, two], o.connections);
      for (let round = 0; round < o.rounds; round++)
        for (const [n, r] of [
          [1, one],
          [2, two],
        ] as const) {
          const spec = { ...s.spec(r), connections: o.connections };
          await load({ ...spec, seconds: 1 });
          runs[n]!.push(await load({ ...spec, seconds: o.seconds }));
        }
      const pick = (n: number): ReplicaRow => {
        const rs = runs[n]!;
        return {
          scenario: s.name,
          replicas: n,
          rps: median(rs.map((x) => x.rps)),
          p50: median(rs.map((x) => x.p50)),
          p99: median(rs.map((x) => x.p99)),
          errors: rs.reduce((t, x) => t + x.errors, 0),
          non2xx: rs.reduce((t, x) => t + x.non2xx, 0),
        };
      };
      const [r1, r2] = [pick(1), pick(2)];
      rows.push(r1, r2);
      for (const row of [r1, r2])
        print([s.name, row.replicas, row.rps, row.p50, row.p99, row.errors, row.non2xx, ratio(row.rps * 100, r1.rps)]);
    }
    // Right after the order rounds, so both topologies are as warm as they were timed.
    const costs = await orderCosts(one, two, o);
    const drop = await invalidation(two, 200);
    process.stdout.write(
      `\ninvalidation: a price change on product replica 1 seen by replica 2, after the PATCH answered, at p50 ${drop.p50} ms, p99 ${drop.p99} ms (max ${drop.max} ms, ${drop.samples} changes)\n`,
    );
    return { rows, costs, invalidation: drop };
  } finally {
    await two.stop();
    await one.stop();
  }
}
