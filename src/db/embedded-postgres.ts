import { mkdirSync } from 'node:fs';
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
    const db = await PGlite.create({ dataDir: this.o.dataDir });
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
  }
}
