import { parentPort, workerData } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import pino from 'pino';
import { collectGarbage } from '../collect-garbage.ts';
import { PgliteServer } from './pglite-server.ts';

/**
 * The embedded database's own thread, in one of two modes:
 * - `serve`: PGlite (PostgreSQL compiled to WebAssembly, which runs on
 *   whichever thread calls it) and the server that lets toko's connection
 *   pools take turns on it. On the main thread every statement would stop
 *   the event loop while it runs; here it uses another core.
 * - `init`: creates a data directory (initdb) and exits. Initialising grows
 *   PGlite's memory to ~800 MB, which a WebAssembly instance never gives
 *   back; a thread that ends takes that memory with it.
 * Started by EmbeddedPostgres; talks to it with { port } / 'stop' / 'stopped'.
 */
interface Options {
  mode: 'init' | 'serve';
  dataDir: string;
  maxConnections: number;
  /** postgresql.conf lines for this start. */
  settings: string[];
}

const port = parentPort!;
const o = workerData as Options;

if (o.mode === 'init') {
  const db = await PGlite.create({ dataDir: o.dataDir });
  await db.close();
  port.postMessage({ type: 'ready', port: 0 });
} else {
  // Errors go to the main thread's logger; nothing else is logged here.
  const logger = pino({ level: 'error' }, { write: (line: string) => port.postMessage({ type: 'log', line }) });
  const db = await PGlite.create({ dataDir: o.dataDir, postgresqlconf: o.settings });
  const server = new PgliteServer({ db, host: '127.0.0.1', port: 0, maxConnections: o.maxConnections, logger });
  port.postMessage({ type: 'ready', port: await server.start() });
  setTimeout(collectGarbage, 2000).unref();

  port.on('message', (message: unknown) => {
    if (message !== 'stop') return;
    void (async () => {
      await server.stop();
      if (!db.closed) await db.close();
      port.postMessage({ type: 'stopped' });
      port.close();
    })();
  });
}
