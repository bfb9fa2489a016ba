import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePorts } from '../test/helpers/wait.ts';
import { idleCost, idleRss, launch, stopTree, treeRss, waitHttp } from './procs.ts';
import { table } from './report.ts';
import { freshPgDatabase, json, seedUsers } from './targets.ts';
import { load } from './wrk.ts';
import { MODULE_NAMES } from '../src/registry.ts';

export interface FootprintOptions {
  adminUrl: string;
  withSplit: boolean;
}

/** The targets for `npm start` on the embedded database: reported against, not asserted. */
export const FOOTPRINT_TARGETS = { firstStartMs: 3000, restartMs: 1500, idleRssMiB: 300 };

/** Where one `npm start`'s time went, from the server's own log lines. */
export interface StartupBreakdown {
  /** Command start to the node process's start: npm and its prestart (the build check). */
  npmMs: number;
  /** The server's phases from its process start, in ms and in order (`startupPhasesMs` of its listening line). */
  phases: Record<string, number>;
  /** Process start to listening, by the server's clock (`startupMs`). */
  listeningMs: number;
  /** The embedded database's own start, on its thread while `load` runs (its ready line); undefined on PostgreSQL. */
  embeddedStartMs?: number;
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
  /**
   * After the restart's load, with nothing asked of it for 10 s: the whole tree's CPU in ms per second and its
   * event loops' context switches per second (about one per wake-up).
   */
  idleCpuMsPerS?: number;
  idleWakesPerS?: number;
  /** `npm start` only: where the first start's and the restart's time went. */
  firstStartPhases?: StartupBreakdown;
  restartPhases?: StartupBreakdown;
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

/**
 * Reads the server's start-up lines from the child's stdout until it
 * listens, then lets the rest of its output (request lines under load) pass
 * unread; undefined if the output ends first.
 */
function startupBreakdown(child: ChildProcess, spawnedAt: number): Promise<StartupBreakdown | undefined> {
  const lines = createInterface({ input: child.stdout! });
  let embeddedStartMs: number | undefined;
  return new Promise((resolve) => {
    lines.on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        return; // npm's own lines
      }
      if (line.msg === 'embedded PostgreSQL (PGlite) ready') embeddedStartMs = line.startMs as number;
      if (line.msg !== 'toko is listening') return;
      const listeningMs = line.startupMs as number;
      resolve({
        npmMs: Date.parse(line.time as string) - listeningMs - spawnedAt,
        phases: line.startupPhasesMs as Record<string, number>,
        listeningMs,
        embeddedStartMs,
      });
      lines.close();
      child.stdout!.resume();
    });
    lines.on('close', () => resolve(undefined));
  });
}

async function measure(
  topology: FootprintRow['topology'],
  run: (dataDir: string) => {
    cmd: string[];
    env: Record<string, string>;
    ready: string[];
    url: string;
    /** The command is `npm start`: its log says where its start-up time went. */
    phases?: boolean;
  },
): Promise<FootprintRow> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `toko-footprint-${topology}-`));
  try {
    const once = async (withLoad: boolean) => {
      const r = run(dataDir);
      const started = performance.now();
      const spawnedAt = Date.now();
      const child = launch(r.cmd[0]!, r.cmd.slice(1), r.env, { stdout: r.phases ? 'pipe' : 'ignore' });
      const breakdown = r.phases ? startupBreakdown(child, spawnedAt) : Promise.resolve(undefined);
      try {
        await Promise.all(r.ready.map((u) => waitHttp(u, 180_000, child)));
        const ms = Math.round(performance.now() - started);
        const phases = await Promise.race([breakdown, sleep(5000).then(() => undefined)]);
        const rss = await idleRss(child.pid!);
        const processes = treeRss(child.pid!).processes.map(({ name, mib }) => ({ name, mib }));
        let after: number | undefined;
        let idle: { cpuMsPerS: number; wakesPerS: number } | undefined;
        if (withLoad) {
          await exercise(r.url);
          after = await idleRss(child.pid!, 2000);
          idle = await idleCost(child.pid!);
        }
        return { ms, rss, after, idle, processes, phases };
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
      idleCpuMsPerS: again.idle?.cpuMsPerS,
      idleWakesPerS: again.idle?.wakesPerS,
      firstStartPhases: first.phases,
      restartPhases: again.phases,
      processes: again.processes,
    };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Each `npm start`'s phases in ms, then the embedded rows against the targets. */
function printPhases(rows: FootprintRow[]): void {
  const starts = rows.flatMap((r) =>
    (
      [
        ['first', r.firstStartPhases, r.firstStartMs],
        ['restart', r.restartPhases, r.restartMs],
      ] as const
    ).flatMap(([when, b, readyMs]) => (b ? [{ name: `${r.topology} ${when}`, b, readyMs }] : [])),
  );
  if (!starts.length) return;
  const phaseNames = Object.keys(starts[0]!.b.phases);
  const print = table(
    'footprint: where the time to ready went (ms; npm = command start to node; the phases add up to listening; DB thread = the embedded database, alongside load)',
    [
      { name: 'start', width: 16, left: true },
      { name: 'npm', width: 5 },
      ...phaseNames.map((name) => ({ name, width: Math.max(5, name.length) })),
      { name: 'listening', width: 9 },
      { name: 'ready', width: 6 },
      { name: 'DB thread', width: 9 },
    ],
  );
  for (const { name, b, readyMs } of starts)
    print([name, b.npmMs, ...phaseNames.map((p) => b.phases[p]), b.listeningMs, readyMs, b.embeddedStartMs]);
  const embedded = rows.find((r) => r.topology === 'embedded');
  if (!embedded) return;
  const t = FOOTPRINT_TARGETS;
  const against = (value: number, target: number, unit: string) =>
    `${value} ${unit} (target ≤ ${target}: ${value <= target ? 'met' : 'not met'})`;
  process.stdout.write(
    `targets, embedded (not asserted): first start ${against(embedded.firstStartMs, t.firstStartMs, 'ms')}, ` +
      `restart ${against(embedded.restartMs, t.restartMs, 'ms')}, ` +
      `idle RSS first ${against(embedded.rssFirstStart, t.idleRssMiB, 'MiB')}, ` +
      `restart ${against(embedded.rssRestart, t.idleRssMiB, 'MiB')}\n`,
  );
}

/** Prints each row as it comes, and keeps it in `rows`. */
function rowPrinter(rows: FootprintRow[]): (r: FootprintRow) => void {
  const print = table(
    'footprint: start-up to ready, RSS of the whole process tree (MiB), and its idle cost after a load',
    [
      { name: 'topology', width: 10, left: true },
      { name: 'first ms', width: 9 },
      { name: 'restart ms', width: 10 },
      { name: 'RSS first', width: 9 },
      { name: 'RSS restart', width: 11 },
      { name: 'after load', width: 10 },
      { name: 'idle CPU ms/s', width: 13 },
      { name: 'idle wakes/s', width: 12 },
    ],
  );
  return (r: FootprintRow) => {
    rows.push(r);
    print([
      r.topology,
      r.firstStartMs,
      r.restartMs,
      r.rssFirstStart,
      r.rssRestart,
      r.rssAfterLoad,
      r.idleCpuMsPerS,
      r.idleWakesPerS,
    ]);
  };
}

/**
 * Start-up time and resident memory of what a user runs: `npm start` on an
 * empty data directory and again on the data it left (embedded database, and
 * with DATABASE_URL), and `npm run split`. RSS is the whole process tree,
 * npm included. For `npm start`, where the time went, phase by phase, from
 * the server's log.
 */
export async function benchFootprint(
  o: FootprintOptions,
): Promise<{ rows: FootprintRow[]; targets: typeof FOOTPRINT_TARGETS }> {
  const rows: FootprintRow[] = [];
  const emit = rowPrinter(rows);
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
      phases: true,
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
        phases: true,
      })),
    );
  } finally {
    await db.drop();
  }

  if (o.withSplit) emit(await measureSplit(base));
  printPhases(rows);
  return { rows, targets: FOOTPRINT_TARGETS };
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
