import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { launch, ROOT, stopTree, waitHttp } from './procs.ts';

export const ADMIN = { email: 'bench-admin@example.com', password: 'bench-admin-password' };
const PASSWORD = 'bench-password';

/** A server the bench drives: its base URL, its process (for memory), and how to stop it. */
export interface Target {
  name: string;
  url: string;
  child?: ChildProcess;
  stop(): Promise<void>;
}

export const json = async <T = Record<string, unknown>>(
  url: string,
  init: { method?: string; token?: string; body?: unknown } = {},
): Promise<{ status: number; body: T }> => {
  const res = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { 'content-type': 'application/json', ...(init.token ? { authorization: `Bearer ${init.token}` } : {}) },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
};

/** A fresh database on the PostgreSQL server at `adminUrl`; dropped by the returned function. */
export async function freshPgDatabase(
  adminUrl: string,
  prefix: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  // BENCH_DB_PREFIX keeps benches run side by side on one server apart.
  const name = `${process.env.BENCH_DB_PREFIX ?? ''}${prefix}_${randomBytes(4).toString('hex')}`;
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  await c.query(`create database "${name}"`);
  await c.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const d = new pg.Client({ connectionString: adminUrl });
      await d.connect();
      await d.query(`drop database if exists "${name}" with (force)`);
      await d.end();
    },
  };
}

/** How the bench runs toko: the process `npm start` runs (its script in package.json, compiled first if stale), without npm around it. */
export const TOKO_COMMAND: [string, string[]] = (() => {
  execFileSync(process.execPath, ['scripts/ensure-build.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = pkg.scripts.start.split(/\s+/);
  if (command !== 'node') throw new Error(`npm start runs ${command}; the bench expects node`);
  return [process.execPath, args];
})();

/** The environment every toko the bench starts shares: production mode, default (info) logging to a discarded stdout. */
export function tokoEnv(port: number, extra: Record<string, string>): Record<string, string> {
  return {
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    SEED_DEMO: 'true',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    BCRYPT_COST: '10',
    // The bench signs up its 200 users from one address.
    REGISTER_MAX_PER_CLIENT: '1000000',
    // Ten connections per module would leave too few of PostgreSQL's 100 for the order ceiling's 64 beside toko.
    DB_POOL_MAX: '8',
    ...extra,
  };
}

/** toko as its own process on `port`: on the PostgreSQL database `databaseUrl`, or embedded when undefined. */
export async function startToko(
  name: string,
  port: number,
  databaseUrl: string | undefined,
  more: { env?: Record<string, string>; nodeFlags?: string[] } = {},
): Promise<Target> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-bench-'));
  const env = tokoEnv(port, { DATA_DIR: dataDir, ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}), ...more.env });
  const child = launch(TOKO_COMMAND[0], [...(more.nodeFlags ?? []), ...TOKO_COMMAND[1]], env);
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health/ready`, 120_000, child);
  return {
    name,
    url,
    child,
    stop: async () => {
      await stopTree(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The bare node:http server answering /health's JSON: what Node itself allows on this machine. */
export async function startCeiling(port: number): Promise<Target> {
  const child = launch(process.execPath, ['--import', 'tsx', 'bench/ceiling.ts'], { PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health`, 10_000, child);
  return { name: 'ceiling', url, child, stop: () => stopTree(child) };
}

const PYTHON = '/usr/bin/python3';
const PEER_PACKAGES = [
  'python3-fastapi',
  'python3-uvicorn',
  'python3-sqlalchemy',
  'python3-psycopg2',
  'python3-passlib',
  'python3-bcrypt',
  'python3-jwt',
  'python3-email-validator',
  'python3-uvloop',
  'python3-httptools',
];

/** Debian's Python packages the peer needs, installed when one is missing. */
export function ensurePeerPackages(): void {
  try {
    execFileSync(
      PYTHON,
      ['-c', 'import fastapi, uvicorn, sqlalchemy, psycopg2, passlib, bcrypt, jwt, email_validator, uvloop, httptools'],
      { stdio: 'ignore' },
    );
  } catch {
    process.stdout.write(`installing the peer's packages (apt-get install ${PEER_PACKAGES.join(' ')})\n`);
    execFileSync(
      'sh',
      ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${PEER_PACKAGES.join(' ')}`],
      { stdio: 'inherit' },
    );
  }
}

/** The seed-style FastAPI user service (bench/peer/app.py) on the PostgreSQL database `databaseUrl`. */
export async function startPeer(port: number, databaseUrl: string): Promise<Target> {
  const child = launch(PYTHON, ['bench/peer/app.py'], {
    PORT: String(port),
    PEER_DATABASE_URL: databaseUrl.replace(/^postgres:/, 'postgresql:'),
    PEER_BCRYPT_ROUNDS: '10',
    PEER_ADMIN_EMAIL: ADMIN.email,
    PEER_ADMIN_PASSWORD: ADMIN.password,
  });
  const url = `http://127.0.0.1:${port}`;
  await waitHttp(`${url}/health`, 30_000, child);
  return { name: 'peer', url, child, stop: () => stopTree(child) };
}

/** What the read scenarios need on a toko or the peer: customers (for the list of 50), one customer's id and token, an admin token. */
export interface Users {
  customerId: string;
  customerToken: string;
  adminToken: string;
}

export async function seedUsers(url: string, count: number): Promise<Users> {
  const tag = randomBytes(3).toString('hex');
  const ids: string[] = [];
  for (let i = 0; i < count; i += 8) {
    const batch = Array.from({ length: Math.min(8, count - i) }, (_, j) => i + j);
    const made = await Promise.all(
      batch.map((n) =>
        json<{ id: string }>(`${url}/api/v1/users/register`, {
          body: {
            email: `b${tag}${n}@bench.example.com`,
            username: `b${tag}${n}`,
            password: PASSWORD,
            fullName: `Bench ${n}`,
          },
        }),
      ),
    );
    for (const m of made) {
      if (m.status !== 201) throw new Error(`${url}: registration answered ${m.status}`);
      ids.push(m.body.id);
    }
  }
  const login = async (email: string, password: string) => {
    const r = await json<{ accessToken: string }>(`${url}/api/v1/users/login`, { body: { email, password } });
    if (r.status !== 200) throw new Error(`${url}: login answered ${r.status}`);
    return r.body.accessToken;
  };
  return {
    customerId: ids[0]!,
    customerToken: await login(`b${tag}0@bench.example.com`, PASSWORD),
    adminToken: await login(ADMIN.email, ADMIN.password),
  };
}

/** Products for the order scenarios: one hot product with stock for any run, and the demo catalogue restocked likewise. */
export async function seedProducts(url: string, adminToken: string): Promise<{ hot: string; catalogue: string[] }> {
  const hot = await json<{ id: string }>(`${url}/api/v1/products`, {
    token: adminToken,
    body: { name: 'Bench hot product', price: 1_500_000, stock: 50_000_000, category: 'bench' },
  });
  if (hot.status !== 201) throw new Error(`${url}: creating a product answered ${hot.status}`);
  const all = await json<{ items: { id: string; stock: number; category: string }[] }>(
    `${url}/api/v1/products?limit=100`,
  );
  const catalogue = all.body.items.filter((p) => p.category !== 'bench').map((p) => p.id);
  for (const id of catalogue) {
    const r = await json(`${url}/api/v1/products/${id}/stock`, { token: adminToken, body: { delta: 10_000_000 } });
    if (r.status !== 200) throw new Error(`${url}: restocking answered ${r.status}`);
  }
  return { hot: hot.body.id, catalogue };
}
