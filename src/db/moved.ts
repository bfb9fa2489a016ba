import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

/** The table, in a module's schema, in which `npm run move-data` names the database the module's data moved to. */
export const MOVED_TABLE = 'toko_moved';
/** The SQLSTATE a write to a moved module's old copy fails with (answered 503 with Retry-After: kit/outage.ts). */
export const MOVED_SQLSTATE = 'TKMOV';
/** How often each replica looks for the marker. */
export const MOVED_POLL_MS = 250;

interface PooledConnection {
  __knex__disposed?: unknown;
}
interface KnexClient {
  connectionSettings: Record<string, unknown>;
  pool?: { free: { resource: PooledConnection }[]; used: { resource: PooledConnection }[] };
}

const clientOf = (orm: MikroORM) => (orm.em.getConnection().getKnex() as unknown as { client: KnexClient }).client;

/**
 * Points the ORM's pool at another database: new connections go there, and
 * every connection it holds is marked disposed, so the pool closes it at its
 * next use instead of handing it out (one in use finishes its statement first).
 */
export function switchDatabase(orm: MikroORM, url: string): void {
  const client = clientOf(orm);
  const settings: Record<string, unknown> = { ...client.connectionSettings, connectionString: url };
  for (const key of ['host', 'port', 'user', 'password', 'database']) delete settings[key];
  client.connectionSettings = settings;
  for (const c of [...(client.pool?.free ?? []), ...(client.pool?.used ?? [])])
    c.resource.__knex__disposed = 'the module moved to another database';
}

/**
 * Watches the module's moved marker on the database it is connected to and,
 * when one names another URL, switches the module's connections there:
 * every replica follows `npm run move-data` within MOVED_POLL_MS, without a
 * restart. Returns the stop function. A failed look (the database down, the
 * table not there) is ignored: the next one tries again.
 */
export function watchMoved(orm: MikroORM, schema: string, module: string, logger: Logger): () => void {
  let current = '';
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const look = async () => {
    try {
      const rows = await orm.em
        .fork()
        .getConnection()
        .execute<{ url: string }[]>(`select "url" from "${schema}"."${MOVED_TABLE}" order by "moved_at" desc limit 1`);
      const url = rows[0]?.url;
      if (url && url !== current) {
        current = url;
        switchDatabase(orm, url);
        logger.warn({ module }, 'the module moved to another database: its connections now go there');
      }
    } catch {
      // No marker table (never moved), or the database is unavailable: look again later.
    }
    if (!stopped) timer = setTimeout(() => void look(), MOVED_POLL_MS).unref();
  };
  timer = setTimeout(() => void look(), MOVED_POLL_MS).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
