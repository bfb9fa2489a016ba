import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';

/** The table, in a module's schema, in which `npm run move-data` names the database the module's data moved to. */
export const MOVED_TABLE = 'toko_moved';
/** The SQLSTATE a write to a moved module's old copy fails with (answered 503 with Retry-After: kit/outage.ts). */
export const MOVED_SQLSTATE = 'TKMOV';

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

/** The URL the module's marker on this connection names, if the marker table is there. */
async function markedUrl(orm: MikroORM, table: string): Promise<string | undefined> {
  const connection = orm.em.fork().getConnection();
  const present = (await connection.execute<{ t: string | null }[]>(`select to_regclass(?::text) as t`, [table]))[0]?.t;
  if (!present) return undefined;
  const rows = await connection.execute<{ url: string }[]>(
    `select "url" from ${table} order by "moved_at" desc limit 1`,
  );
  return rows[0]?.url;
}

/**
 * At start, before migrations: when the configured database is a copy the
 * module moved away from (`npm run move-data` left its marker, also after
 * `--drop-copy`), connects the module to the database it names instead, so
 * a replica started with the old URL neither serves the stale copy nor
 * migrates an empty one. Returns the URL followed, or undefined.
 */
export async function followMoved(
  orm: MikroORM,
  schema: string,
  module: string,
  logger: Logger,
): Promise<string | undefined> {
  const url = await markedUrl(orm, `"${schema}"."${MOVED_TABLE}"`);
  if (!url) return undefined;
  switchDatabase(orm, url);
  logger.warn(
    { module },
    "the configured database is a copy this module moved away from: following its marker to the new database (set the module's database URL to it)",
  );
  return url;
}

/**
 * Watches the module's moved marker on the database it is connected to and,
 * when one names another URL, switches the module's connections there:
 * every replica follows `npm run move-data` within `pollMs`
 * (MOVED_DATA_POLL_MS), without a restart. Until the marker table exists it
 * asks only whether it does (`to_regclass`), so a module that never moved
 * costs one statement that cannot fail per look, and nothing in the
 * server's error log. A failed look (the database down) is ignored: the
 * next one tries again. Returns the stop function.
 */
export function watchMoved(orm: MikroORM, schema: string, module: string, logger: Logger, pollMs: number): () => void {
  let current = '';
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const look = async () => {
    try {
      const url = await markedUrl(orm, `"${schema}"."${MOVED_TABLE}"`);
      if (url && url !== current) {
        current = url;
        switchDatabase(orm, url);
        logger.warn({ module }, 'the module moved to another database: its connections now go there');
      }
    } catch {
      // The database is unavailable: look again later.
    }
    if (!stopped) timer = setTimeout(() => void look(), pollMs).unref();
  };
  timer = setTimeout(() => void look(), pollMs).unref();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
