import { mkdirSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketHandler } from '@electric-sql/pglite-socket';
import type { Logger } from 'pino';
import { SessionQueue } from './session-queue.ts';

export interface EmbeddedPostgresOptions {
  /** Where PGlite keeps its files; created if missing, reused across restarts. */
  dataDir: string;
  /** How many client connections the socket accepts at once. */
  maxConnections: number;
  logger: Logger;
}

/**
 * PGlite served on a loopback port, so the ordinary `pg`-based MikroORM
 * driver talks to it exactly as it would to a PostgreSQL server.
 */
export class EmbeddedPostgres {
  private readonly o: EmbeddedPostgresOptions;
  private db: PGlite | undefined;
  private server: Server | undefined;
  private readonly handlers = new Set<PGLiteSocketHandler>();
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
    const queue = new SessionQueue(db);
    const server = createServer((socket) => this.accept(socket, queue));
    server.maxConnections = this.o.maxConnections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.o.logger.info({ dataDir: this.o.dataDir }, 'embedded PostgreSQL (PGlite) ready');
  }

  private accept(socket: Socket, queue: SessionQueue): void {
    const handler = new PGLiteSocketHandler({
      // The handler only needs enqueue/clearQueueForHandler/clearTransactionIfNeeded.
      queryQueue: queue as unknown as ConstructorParameters<typeof PGLiteSocketHandler>[0]['queryQueue'],
      closeOnDetach: true,
    });
    this.handlers.add(handler);
    handler.addEventListener('close', () => this.handlers.delete(handler));
    handler.addEventListener('error', () => this.handlers.delete(handler));
    handler.attach(socket).catch((err: unknown) => {
      this.o.logger.warn({ err }, 'embedded PostgreSQL: could not attach a connection');
      socket.destroy();
    });
  }

  /** Stops accepting, drops client connections, and closes PGlite so its files are consistent. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      await Promise.all([...this.handlers].map((h) => h.detach(true)));
      this.handlers.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    const db = this.db;
    this.db = undefined;
    if (db && !db.closed) await db.close();
  }
}
