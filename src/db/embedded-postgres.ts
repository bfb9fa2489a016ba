import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';

export interface EmbeddedPostgresOptions {
  /** Where PGlite keeps its files; created if missing, reused across restarts. */
  dataDir: string;
  /** How many client connections the server accepts at once. */
  maxConnections: number;
  logger: Logger;
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
    mkdirSync(this.o.dataDir, { recursive: true });
    this.lock();
    // The worker is TypeScript under tsx (npm start, tests) and JavaScript once compiled.
    const entry = new URL(`./embedded-postgres.worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).href;
    const worker = new Worker(new URL('./thread.mjs', import.meta.url), { workerData: { entry, dataDir: this.o.dataDir, maxConnections: this.o.maxConnections } });
    worker.on('message', (m: { type: string; line?: string }) => {
      if (m.type === 'log') this.o.logger.error({ embedded: JSON.parse(m.line!) as unknown }, 'embedded PostgreSQL');
    });
    try {
      this.port = await new Promise<number>((resolve, reject) => {
        worker.on('message', (m: { type: string; port?: number }) => m.type === 'ready' && resolve(m.port!));
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`the embedded database stopped while starting (exit ${code})`)));
      });
    } catch (err) {
      await worker.terminate();
      this.unlock();
      throw err;
    }
    worker.on('error', (err) => this.o.logger.error({ err }, 'embedded PostgreSQL failed'));
    this.worker = worker;
    this.o.logger.info({ dataDir: this.o.dataDir }, 'embedded PostgreSQL (PGlite) ready');
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
          throw new Error(`the data directory ${this.o.dataDir} is in use by process ${owner}; stop it or set another DATA_DIR`);
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
