import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

export interface EmbeddedPostgresOptions {
  /** Where PGlite keeps its files; created if missing, reused across restarts. */
  dataDir: string;
  /** How many client connections the server accepts at once. */
  maxConnections: number;
  /**
   * Where initialised data directories are kept, one per PGlite version:
   * a new data directory is a copy (a tenth of a second) instead of an
   * initdb (seconds). Undefined: every new data directory is initialised.
   */
  templateDir?: string;
  logger: Logger;
}

/**
 * postgresql.conf for the embedded database: PostgreSQL's defaults size
 * shared buffers for a server (128 MB, held in PGlite's memory for good);
 * a shop's working set fits in far less, and the operating system's page
 * cache sits behind it. Durability settings are left as they are.
 */
export const EMBEDDED_SETTINGS = [
  'shared_buffers=8MB',
  'max_connections=20',
  'wal_buffers=1MB',
  'maintenance_work_mem=16MB',
];

/** The installed PGlite's version (its package does not export package.json). */
function pgliteVersion(): string {
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const root = entry.slice(0, entry.lastIndexOf(`${path.sep}dist${path.sep}`));
  return (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * PGlite served on a loopback port, so the ordinary `pg`-based MikroORM
 * driver talks to it exactly as it would to a PostgreSQL server. PGlite has
 * one session; the server (./pglite-server.ts) lets the connections take
 * turns, a whole request or transaction at a time. Both run on a worker
 * thread of their own (./embedded-postgres.worker.ts), so SQL runs beside
 * the event loop instead of inside it.
 */
export class EmbeddedPostgres {
  private readonly o: EmbeddedPostgresOptions;
  private worker: Worker | undefined;
  private port = 0;
  private lockFile: string | undefined;

  constructor(opts: EmbeddedPostgresOptions) {
    this.o = { ...opts };
    if (this.o.maxConnections < 1) throw new Error('maxConnections must be at least 1');
  }

  get url(): string {
    if (!this.worker) throw new Error('embedded PostgreSQL is not started');
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    const started = performance.now();
    mkdirSync(this.o.dataDir, { recursive: true });
    this.lock();
    let worker: Worker | undefined;
    try {
      if (!existsSync(path.join(this.o.dataDir, 'PG_VERSION'))) await this.initialise();
      worker = this.spawn('serve', this.o.dataDir);
      worker.on('message', (m: { type: string; line?: string }) => {
        if (m.type === 'log') this.o.logger.error({ embedded: JSON.parse(m.line!) as unknown }, 'embedded PostgreSQL');
      });
      this.port = await ready(worker);
    } catch (err) {
      await worker?.terminate();
      this.unlock();
      throw err;
    }
    worker.on('error', (err) => this.o.logger.error({ err }, 'embedded PostgreSQL failed'));
    this.worker = worker;
    // startMs: on its own thread, alongside what the main thread does meanwhile (loading the rest of toko).
    this.o.logger.info(
      { dataDir: this.o.dataDir, startMs: Math.round(performance.now() - started) },
      'embedded PostgreSQL (PGlite) ready',
    );
  }

  private spawn(mode: 'init' | 'serve', dataDir: string): Worker {
    return spawnWorker(mode, dataDir, this.o.maxConnections);
  }

  /** A new data directory: a copy of the template (made once, on a thread that then ends), or initdb in place without one. */
  private async initialise(): Promise<void> {
    if (!this.o.templateDir) return initDataDir(this.o.dataDir, this.o.maxConnections);
    await copyTree(await ensureTemplate(this.o.templateDir, this.o.logger), this.o.dataDir);
  }

  /** Drops client connections and closes PGlite so its files are left consistent. */
  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      const stopped = new Promise<void>((resolve) => {
        worker.on('message', (m: { type: string }) => m.type === 'stopped' && resolve());
        worker.once('exit', () => resolve());
      });
      worker.postMessage('stop');
      await stopped;
      await worker.terminate();
    }
    this.unlock();
  }

  /**
   * PGlite has no lock of its own: two processes on one data directory would
   * corrupt it. The lock file holds the owner's pid; a lock whose process is
   * gone (after a crash) is taken over.
   */
  private lock(): void {
    const file = path.join(this.o.dataDir, 'toko.lock');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        this.lockFile = file;
        LOCKED_HERE.add(file);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const owner = Number(readFileSync(file, 'utf8').trim());
        // The same pid can be a previous life of this process (pid 1 in a container), so only our own lock set counts.
        const inUse = owner === process.pid ? LOCKED_HERE.has(file) : owner > 0 && isAlive(owner);
        if (inUse) {
          throw new Error(
            `the data directory ${this.o.dataDir} is in use by process ${owner}; stop it or set another DATA_DIR`,
          );
        }
        rmSync(file, { force: true });
      }
    }
    throw new Error(`could not lock the data directory ${this.o.dataDir}`);
  }

  private unlock(): void {
    if (this.lockFile) {
      rmSync(this.lockFile, { force: true });
      LOCKED_HERE.delete(this.lockFile);
    }
    this.lockFile = undefined;
  }
}

function spawnWorker(mode: 'init' | 'serve', dataDir: string, maxConnections: number): Worker {
  // The worker is TypeScript under tsx (tests, npm run dev) and JavaScript once compiled.
  const entry = new URL(`./embedded-postgres.worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url)
    .href;
  // A small young generation: the thread's own JavaScript allocates little beside PGlite's memory.
  return new Worker(new URL('./thread.mjs', import.meta.url), {
    workerData: { entry, mode, dataDir, maxConnections, settings: EMBEDDED_SETTINGS },
    resourceLimits: { maxYoungGenerationSizeMb: 4 },
  });
}

/** initdb into `dataDir`, on a thread that then ends (and takes initdb's memory with it). */
async function initDataDir(dataDir: string, maxConnections = 1): Promise<void> {
  const worker = spawnWorker('init', dataDir, maxConnections);
  await ready(worker);
  await worker.terminate();
}

/**
 * The initialised data directory new ones are copied from, under
 * `templateDir`, one per PGlite version: made now if it is not there (once
 * per machine; `npm install` makes it). Returns its path.
 */
export async function ensureTemplate(templateDir: string, logger: Logger): Promise<string> {
  const template = path.join(templateDir, `pglite-${pgliteVersion()}`);
  if (existsSync(path.join(template, 'PG_VERSION'))) return template;
  const building = `${template}.${process.pid}.${randomBytes(4).toString('hex')}`;
  mkdirSync(building, { recursive: true });
  await initDataDir(building);
  try {
    renameSync(building, template);
    logger.info({ template }, 'embedded PostgreSQL template made; new data directories are copies of it');
  } catch {
    // Another process made it meanwhile.
    rmSync(building, { recursive: true, force: true });
  }
  return template;
}

/**
 * Copies a directory tree of plain files (a data directory, ~1,000 files):
 * the directories first, then the files several at a time on libuv's threads,
 * which here takes a fraction of fs.cpSync's time.
 */
async function copyTree(from: string, to: string): Promise<void> {
  const files: [string, string][] = [];
  const walk = (source: string, target: string) => {
    mkdirSync(target, { recursive: true });
    for (const entry of readdirSync(source, { withFileTypes: true })) {
      const s = path.join(source, entry.name);
      const t = path.join(target, entry.name);
      if (entry.isDirectory()) walk(s, t);
      else files.push([s, t]);
    }
  };
  walk(from, to);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let next = files.pop(); next; next = files.pop()) await copyFile(next[0], next[1]);
    }),
  );
}

/** Resolves with the port the worker serves on (0 for `init`) once it is ready; rejects if it fails first. */
function ready(worker: Worker): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    worker.on('message', (m: { type: string; port?: number }) => m.type === 'ready' && resolve(m.port!));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the embedded database stopped while starting (exit ${code})`)));
  });
}

/** Lock files held by this process. */
const LOCKED_HERE = new Set<string>();

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
