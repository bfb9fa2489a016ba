import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import type { Logger } from 'pino';

export interface EmbeddedPostgresOptions {
  /** Where PGlite keeps its files; created if missing, reused across restarts. */
  dataDir: string;
  /** How many client connections the socket accepts at once (pglite-socket's default is 1). */
  maxConnections: number;
  logger: Logger;
}

/**
 * PGlite served on a loopback port, so the ordinary `pg`-based MikroORM
 * driver talks to it exactly as it would to a PostgreSQL server. PGlite has
 * one session; pglite-socket queues the connections' messages onto it and
 * keeps a transaction's statements together.
 */
export class EmbeddedPostgres {
  private readonly o: EmbeddedPostgresOptions;
  private db: PGlite | undefined;
  private server: PGLiteSocketServer | undefined;
  private port = 0;
  private lockFile: string | undefined;

  constructor(opts: EmbeddedPostgresOptions) {
    this.o = { ...opts };
    if (this.o.maxConnections < 1) throw new Error('maxConnections must be at least 1');
  }

  get url(): string {
    if (!this.server) throw new Error('embedded PostgreSQL is not started');
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  async start(): Promise<void> {
    mkdirSync(this.o.dataDir, { recursive: true });
    this.lock();
    let db: PGlite;
    try {
      db = await PGlite.create({ dataDir: this.o.dataDir });
    } catch (err) {
      this.unlock();
      throw err;
    }
    this.db = db;
    const server = new PGLiteSocketServer({ db, host: '127.0.0.1', port: 0, maxConnections: this.o.maxConnections });
    const listening = new Promise<number>((resolve) =>
      server.addEventListener('listening', (e) => resolve((e as CustomEvent<{ port: number }>).detail.port), { once: true }),
    );
    await server.start();
    this.port = await listening;
    this.server = server;
    this.o.logger.info({ dataDir: this.o.dataDir }, 'embedded PostgreSQL (PGlite) ready');
  }

  /** Drops client connections and closes PGlite so its files are left consistent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await server?.stop();
    const db = this.db;
    this.db = undefined;
    if (db && !db.closed) await db.close();
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
