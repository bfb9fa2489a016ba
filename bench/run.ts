/**
 * npm run bench [-- --pglite] [-- --no-split]
 *
 * Starts toko as its own process (real PostgreSQL at BENCH_DATABASE_URL, a
 * fresh database per run; or embedded PGlite with --pglite), a bare node:http
 * "ceiling" server answering /health's JSON, and drives each scenario with
 * autocannon from this process at 16 and 64 connections for BENCH_SECONDS
 * (default 5). Prints a table (req/s, p50, p99, errors, ratio to the ceiling)
 * and writes bench/results/<date>.json. Loopback only; every run is bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import pg from 'pg';
import { startSplit } from '../src/split/topology.ts';
import { freePorts } from '../test/helpers/wait.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = [16, 64];
const usePglite = process.argv.includes('--pglite');
const withSplit = !process.argv.includes('--no-split');
const ADMIN = { email: 'bench-admin@toko.test', password: 'bench-admin-password' };

interface Row {
  scenario: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  ratio: number;
}

async function waitHttp(url: string, ms = 60_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up`);
    await sleep(100);
  }
}

function child(args: string[], env: Record<string, string>): ChildProcess {
  const c = spawn(process.execPath, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return c;
}

async function stop(c: ChildProcess) {
  if (c.exitCode !== null) return;
  const exited = once(c, 'exit');
  c.kill('SIGTERM');
  await exited;
}

const json = async (url: string, init?: RequestInit & { token?: string; body?: string }) => {
  const res = await fetch(url, { ...init, headers: { 'content-type': 'application/json', ...(init?.token ? { authorization: `Bearer ${init.token}` } : {}) } });
  return (await res.json()) as Record<string, unknown>;
};

async function run(url: string, opts: Partial<autocannon.Options>, connections: number): Promise<autocannon.Result> {
  return autocannon({ url, connections, duration: SECONDS, pipelining: 1, ...opts });
}

async function main() {
  const [tokoPort, ceilingPort] = await freePorts(2);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-bench-'));
  let dbName: string | undefined;
  const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const env: Record<string, string> = {
    PORT: String(tokoPort),
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    SEED_DEMO: 'true',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    LOGIN_MAX_FAILURES_PER_CLIENT: '100000',
    DB_POOL_MAX: '20',
  };
  if (!usePglite) {
    dbName = `toko_bench_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`create database "${dbName}"`);
    await c.end();
    const u = new URL(adminUrl);
    u.pathname = `/${dbName}`;
    env.DATABASE_URL = u.toString();
  }

  const started = performance.now();
  const toko = child(['--import', 'tsx', 'src/main.ts'], env);
  const ceiling = child(['--import', 'tsx', 'bench/ceiling.ts'], { PORT: String(ceilingPort) });
  const base = `http://127.0.0.1:${tokoPort}`;
  await waitHttp(`${base}/health/ready`);
  const startupMs = Math.round(performance.now() - started);
  await waitHttp(`http://127.0.0.1:${ceilingPort}/`);

  // A customer with a token, and products with stock enough for every order the run can place.
  const email = `bench-${randomBytes(4).toString('hex')}@toko.test`;
  await json(`${base}/api/v1/users/register`, { method: 'POST', body: JSON.stringify({ email, username: `b${randomBytes(4).toString('hex')}`, password: 'bench-password', fullName: 'Bench' }) });
  const token = (await json(`${base}/api/v1/users/login`, { method: 'POST', body: JSON.stringify({ email, password: 'bench-password' }) })).accessToken as string;
  const admin = (await json(`${base}/api/v1/users/login`, { method: 'POST', body: JSON.stringify(ADMIN) })).accessToken as string;
  const products: string[] = [];
  for (let i = 0; i < 3; i++) {
    const p = await json(`${base}/api/v1/products`, { method: 'POST', token: admin, body: JSON.stringify({ name: `Bench ${i}`, price: 1_000_000, stock: 50_000_000, category: 'bench' }) });
    products.push(p.id as string);
  }
  const rssIdle = await pidRss(toko.pid!);

  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  let n = 0;
  const scenarios: [string, string, Partial<autocannon.Options>][] = [
    ['ceiling: bare node:http', `http://127.0.0.1:${ceilingPort}/health`, {}],
    ['GET /health', `${base}/health`, {}],
    ['GET /api/v1/products/:id', `${base}/api/v1/products/${products[0]}`, {}],
    ['GET /api/v1/products?limit=20', `${base}/api/v1/products?limit=20`, {}],
    ['GET /api/v1/users/me', `${base}/api/v1/users/me`, { headers: auth }],
    ['POST /api/v1/orders (1 line)', `${base}/api/v1/orders`, { method: 'POST', headers: auth, body: JSON.stringify({ items: [{ productId: products[0], quantity: 1 }] }) }],
    [
      'POST /api/v1/orders (3 lines)',
      `${base}/api/v1/orders`,
      { method: 'POST', headers: auth, body: JSON.stringify({ items: products.map((productId) => ({ productId, quantity: 1 })) }) },
    ],
    // Last: requests still hashing when autocannon stops keep both cores busy for seconds and would slow whatever ran next.
    [
      'POST /api/v1/users/register (bcrypt cost 12)',
      `${base}/api/v1/users/register`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        requests: [{ setupRequest: (r) => ({ ...r, body: JSON.stringify({ email: `r${++n}${randomBytes(3).toString('hex')}@b.co`, username: `r${n}${randomBytes(3).toString('hex')}`, password: 'bench-password', fullName: 'R' }) }) }],
      },
    ],
  ];

  const rows: Row[] = [];
  const ceilingRps: Record<number, number> = {};
  for (const [name, url, opts] of scenarios) {
    for (const c of CONNECTIONS) {
      const r = await run(url, opts, c);
      if (name.startsWith('ceiling')) ceilingRps[c] = r.requests.average;
      rows.push(row(name, c, r, ceilingRps[c]!));
      printRow(rows.at(-1)!);
    }
  }
  const rssAfter = await pidRss(toko.pid!);
  await stop(toko);

  // Start-up again on the same, now seeded and used, data: migrations and seeding have nothing to do.
  const restarted = performance.now();
  const again = child(['--import', 'tsx', 'src/main.ts'], env);
  await waitHttp(`${base}/health/ready`);
  const restartMs = Math.round(performance.now() - restarted);
  const rssIdleRestarted = await pidRss(again.pid!);
  await stop(again);

  if (withSplit) {
    const splitDir = mkdtempSync(path.join(tmpdir(), 'toko-bench-split-'));
    const [gw, a, b, c, d] = await freePorts(5);
    try {
      const topology = await startSplit({
        dataDir: splitDir,
        gatewayPort: gw!,
        basePort: 0,
        ports: { user: a!, product: b!, order: c!, notification: d! },
        redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
        env: Object.fromEntries(
          Object.entries({ ...env, QUEUE_PREFIX: `bench${randomBytes(3).toString('hex')}` }).filter(([k]) => !['PORT', 'HOST', 'DATA_DIR'].includes(k)),
        ),
      });
      const g = topology.gatewayUrl;
      const stoken = (await json(`${g}/api/v1/users/login`, { method: 'POST', body: JSON.stringify({ email, password: 'bench-password' }) })).accessToken as string;
      for (const cc of CONNECTIONS) {
        const r = await run(`${g}/api/v1/orders`, { method: 'POST', headers: { authorization: `Bearer ${stoken}`, 'content-type': 'application/json' }, body: JSON.stringify({ items: [{ productId: products[1], quantity: 1 }] }) }, cc);
        rows.push(row('split: POST /api/v1/orders via gateway', cc, r, ceilingRps[cc]!));
        printRow(rows.at(-1)!);
      }
      await topology.close();
    } catch (err) {
      process.stdout.write(`split scenario skipped: ${(err as Error).message}\n`);
    } finally {
      rmSync(splitDir, { recursive: true, force: true });
    }
  }
  await stop(ceiling);

  const machine = { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), freeGiB: Math.round(freemem() / 2 ** 30), node: process.version };
  const result = {
    date: new Date().toISOString(),
    database: usePglite ? 'embedded PGlite' : 'PostgreSQL',
    secondsPerScenario: SECONDS,
    machine,
    startupToReadyMs: { emptyDatabase: startupMs, seededDatabase: restartMs },
    rssMiB: { idle: rssIdle, afterLoad: rssAfter, idleAfterRestart: rssIdleRestarted },
    rows,
  };
  process.stdout.write(
    `\nstart-up to /health/ready: ${startupMs} ms on an empty ${result.database} (migrations, demo catalogue), ${restartMs} ms on the seeded one; RSS idle ${rssIdle} MiB, after load ${rssAfter} MiB, idle after restart ${rssIdleRestarted} MiB\n`,
  );
  mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
  const file = path.join(ROOT, 'bench', 'results', `${result.date.slice(0, 10)}${usePglite ? '-pglite' : ''}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`written ${path.relative(ROOT, file)}\n`);

  if (dbName) {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(`drop database if exists "${dbName}" with (force)`);
    await c.end();
  }
  rmSync(dataDir, { recursive: true, force: true });
}

function row(scenario: string, connections: number, r: autocannon.Result, ceiling: number): Row {
  return {
    scenario,
    connections,
    rps: Math.round(r.requests.average),
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    ratio: Math.round((r.requests.average / ceiling) * 1000) / 10,
  };
}

let header = false;
function printRow(r: Row) {
  if (!header) {
    process.stdout.write(`${'scenario'.padEnd(48)} ${'conns'.padStart(5)} ${'req/s'.padStart(8)} ${'p50 ms'.padStart(7)} ${'p99 ms'.padStart(7)} ${'errors'.padStart(7)} ${'non2xx'.padStart(7)} ${'% ceil'.padStart(7)}\n`);
    header = true;
  }
  process.stdout.write(
    `${r.scenario.padEnd(48)} ${String(r.connections).padStart(5)} ${String(r.rps).padStart(8)} ${String(r.p50).padStart(7)} ${String(r.p99).padStart(7)} ${String(r.errors).padStart(7)} ${String(r.non2xx).padStart(7)} ${r.ratio.toFixed(1).padStart(7)}\n`,
  );
}

async function pidRss(pid: number): Promise<number> {
  const { readFileSync } = await import('node:fs');
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

await main();
