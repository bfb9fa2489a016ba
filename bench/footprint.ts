import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePorts } from '../test/helpers/wait.ts';
import { idleRss, launch, stopTree, treeRss, waitHttp } from './procs.ts';
import { table } from './report.ts';
import { freshPgDatabase, json, seedUsers } from './targets.ts';
import { load } from './wrk.ts';
import { MODULE_NAMES } from '../src/registry.ts';

export interface FootprintOptions {
  adminUrl: string;
  withSplit: boolean;
}

export interface FootprintRow {
  topology: 'embedded' | 'postgres' | 'split';
  /** Command start to ready, on an empty data directory / database. */
  firstStartMs: number;
  /** The same command again on the data the first run left. */
  restartMs: number;
  /** RSS of the whole process tree the command leaves running, in MiB. */
  rssFirstStart: number;
  rssRestart: number;
  rssAfterLoad?: number;
  /** What the tree held after the restart, by process. */
  processes: { name: string; mib: number }[];
}

/** Mixed reads and orders for a few seconds: what "after a load run" means here. */
async function exercise(url: string): Promise<void> {
  const users = await seedUsers(url, 2);
  const products = await json<{ items: { id: string }[] }>(`${url}/api/v1/products?limit=5`);
  const id = products.body.items[0]!.id;
  await json(`${url}/api/v1/products/${id}/stock`, { token: users.adminToken, body: { delta: 1_000_000 } });
  await load({ url: `${url}/api/v1/products?limit=20`, connections: 64, seconds: 3 });
  await load({
    url: `${url}/api/v1/users/me`,
    headers: { authorization: `Bearer ${users.customerToken}` },
    connections: 64,
    seconds: 3,
  });
  await load({
    url: `${url}/api/v1/orders`,
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${users.customerToken}` },
    body: JSON.stringify({ items: [{ productId: id, quantity: 1 }] }),
    connections: 16,
    seconds: 4,
  });
}

async function measure(
  topology: FootprintRow['topology'],
  run: (dataDir: string) => { cmd: string[]; env: Record<string, string>; ready: string[]; url: string },
): Promise<FootprintRow> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `toko-footprint-${topology}-`));
  try {
    const once = async (withLoad: boolean) => {
      const r = run(dataDir);
      const started = performance.now();
      const child = launch(r.cmd[0]!, r.cmd.slice(1), r.env);
      try {
        await Promise.all(r.ready.map((u) => waitHttp(u, 180_000, child)));
        const ms = Math.round(performance.now() - started);
        const rss = await idleRss(child.pid!);
        const processes = treeRss(child.pid!).processes.map(({ name, mib }) => ({ name, mib }));
        let after: number | undefined;
        if (withLoad) {
          await exercise(r.url);
          after = await idleRss(child.pid!, 2000);
        }
        return { ms, rss, after, processes };
      } finally {
        await stopTree(child);
      }
    };
    const first = await once(false);
    const again = await once(true);
    return {
      topology,
      firstStartMs: first.ms,
      restartMs: again.ms,
      rssFirstStart: first.rss,
      rssRestart: again.rss,
      rssAfterLoad: again.after,
      processes: again.processes,
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Start-up time and resident memory of what a user runs: `npm start` on an
 * empty data directory and again on the data it left (embedded database, and
 * with DATABASE_URL), and `npm run split`. RSS is the whole process tree,
 * npm included.
 */
export async function benchFootprint(o: FootprintOptions): Promise<{ rows: FootprintRow[] }> {
  const rows: FootprintRow[] = [];
  const print = table('footprint: start-up to ready and RSS of the whole process tree (MiB)', [
    { name: 'topology', width: 10, left: true },
    { name: 'first ms', width: 9 },
    { name: 'restart ms', width: 10 },
    { name: 'RSS first', width: 9 },
    { name: 'RSS restart', width: 11 },
    { name: 'after load', width: 10 },
  ]);
  const emit = (r: FootprintRow) => {
    rows.push(r);
    print([r.topology, r.firstStartMs, r.restartMs, r.rssFirstStart, r.rssRestart, r.rssAfterLoad]);
  };
  const [port] = await freePorts(1);
  const base = {
    PORT: String(port),
    HOST: '127.0.0.1',
    NODE_ENV: 'production',
    ADMIN_EMAIL: 'bench-admin@example.com',
    ADMIN_PASSWORD: 'bench-admin-password',
    BCRYPT_COST: '10',
  };
  const url = `http://127.0.0.1:${port}`;
  emit(
    await measure('embedded', (dataDir) => ({
      cmd: ['npm', 'start'],
      env: { ...base, DATA_DIR: dataDir },
      ready: [`${url}/health/ready`],
      url,
    })),
  );

  const db = await freshPgDatabase(o.adminUrl, 'toko_footprint');
  try {
    emit(
      await measure('postgres', (dataDir) => ({
        cmd: ['npm', 'start'],
        env: { ...base, DATA_DIR: dataDir, DATABASE_URL: db.url, SEED_DEMO: 'true' },
        ready: [`${url}/health/ready`],
        url,
      })),
    );
  } finally {
    await db.drop();
  }

  if (o.withSplit) emit(await measureSplit(base));
  return { rows };
}

/** `npm run split` on its own ports, as a user starts it. */
async function measureSplit(base: { ADMIN_EMAIL: string; ADMIN_PASSWORD: string }): Promise<FootprintRow> {
  const [gateway, servicesBase] = await freePorts(2);
  const g = `http://127.0.0.1:${gateway}`;
  return measure('split', (dataDir) => ({
    cmd: ['npm', 'run', 'split'],
    env: {
      NODE_ENV: 'production',
      DATA_DIR: dataDir,
      GATEWAY_PORT: String(gateway),
      SPLIT_BASE_PORT: String(servicesBase!),
      ADMIN_EMAIL: base.ADMIN_EMAIL,
      ADMIN_PASSWORD: base.ADMIN_PASSWORD,
      BCRYPT_COST: '10',
      QUEUE_PREFIX: `fp${randomBytes(3).toString('hex')}`,
    },
    ready: MODULE_NAMES.map((m) => `${g}/health/${m}`),
    url: g,
  }));
}
