import { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { BaseDeps, ModuleDefinition } from '../../kit/module.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyModule = ModuleDefinition<BaseDeps, any, any>;

/** The statement limit of each ORM's pooled connections: off (0) until `boundStatements` sets it. */
const statementLimits = new WeakMap<MikroORM, { ms: number }>();

/** node-postgres's client, as far as the statement limit needs it. */
interface PgClient {
  query: (...args: unknown[]) => unknown;
  connection?: { stream?: { destroy(): void } };
  /** knex's mark of a connection the pool must discard. */
  __knex__disposed?: unknown;
}

const READ_TIMEOUT = 'Query read timeout';
const timedOut = (err: unknown) => err instanceof Error && err.message === READ_TIMEOUT;

/**
 * Gives every statement on `conn` node-postgres's client-side `query_timeout`
 * while `limit.ms` is set, and closes the connection when one runs out: a
 * database that stopped answering (SIGSTOP, a frozen VM) leaves its
 * connections open and silent, so neither the pool's wait nor TCP keepalive
 * ever ends such a statement. Closing the socket marks the connection
 * disposed for the pool, and a server that wakes up rolls its transaction back.
 */
function limitStatements(conn: PgClient, limit: { ms: number }): void {
  const query = conn.query.bind(conn);
  // Marked disposed at once, so the pool never hands it to the next request before its close is noticed.
  const drop = () => {
    conn.__knex__disposed = READ_TIMEOUT;
    conn.connection?.stream?.destroy();
  };
  conn.query = (config: unknown, ...rest: unknown[]) => {
    if (limit.ms <= 0 || !config || typeof config !== 'object' || 'submit' in config) return query(config, ...rest);
    const bounded = { ...config, query_timeout: limit.ms };
    const at = rest.findIndex((a) => typeof a === 'function');
    if (at >= 0) {
      const callback = rest[at] as (err: unknown, res: unknown) => void;
      rest[at] = (err: unknown, res: unknown) => {
        if (timedOut(err)) drop();
        callback(err, res);
      };
      return query(bounded, ...rest);
    }
    return (query(bounded, ...rest) as Promise<unknown>).catch((err: unknown) => {
      if (timedOut(err)) drop();
      throw err;
    });
  };
}

/**
 * From now on, a statement on this ORM's pool that gets no answer within `ms`
 * fails (an outage: 503) and its connection is closed. Set after migrations,
 * which may legitimately run longer (and wait on each other's lock).
 */
export function boundStatements(orm: MikroORM, ms: number): void {
  const limit = statementLimits.get(orm);
  if (limit) limit.ms = ms;
}

/** One MikroORM instance per module, bound to that module's own schema; committed migrations only. */
export async function openModuleOrm(
  mod: AnyModule,
  opts: { clientUrl: string; poolMax: number; timeoutMs: number; logger: Logger },
): Promise<MikroORM> {
  const limit = { ms: 0 };
  const orm = await MikroORM.init({
    clientUrl: opts.clientUrl,
    schema: mod.schema,
    entities: mod.entities,
    migrations: {
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    // Bounded waits: a new connection, and a free one from the pool; a dead peer is noticed by TCP keepalive.
    pool: {
      min: 0,
      max: opts.poolMax,
      acquireTimeoutMillis: opts.timeoutMs,
      createTimeoutMillis: opts.timeoutMs,
      afterCreate: (conn: PgClient, done: (err: Error | null, conn: PgClient) => void) => {
        limitStatements(conn, limit);
        done(null, conn);
      },
    },
    driverOptions: {
      connection: { connectionTimeoutMillis: opts.timeoutMs, keepAlive: true },
      // knex's own notices (a closed connection leaving the pool) go to the log, not to the console.
      log: {
        warn: (message: string) => opts.logger.warn({ module: mod.name }, message),
        error: (message: string) => opts.logger.error({ module: mod.name }, message),
        deprecate: (message: string) => opts.logger.warn({ module: mod.name }, message),
        debug: () => undefined,
      },
    },
    forceUtcTimezone: true,
    allowGlobalContext: false,
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false },
    debug: false,
    loggerFactory: () => ({
      log: (namespace: string, message: string) => opts.logger.debug({ module: mod.name, namespace }, message),
      error: (namespace: string, message: string) => opts.logger.error({ module: mod.name, namespace }, message),
      warn: (namespace: string, message: string) => opts.logger.warn({ module: mod.name, namespace }, message),
      logQuery: () => undefined,
      setDebugMode: () => undefined,
      isEnabled: () => false,
    }),
  });
  statementLimits.set(orm, limit);
  return orm;
}

/**
 * Applies this module's pending migrations; returns their names. When the
 * migrations table already lists every committed migration (every start but
 * the first after an upgrade), one query says so and the migrator, with the
 * tooling it loads, is never loaded.
 *
 * With `lock` (a database server, where several replicas or a rollout's pods
 * migrate at once), the migrator runs under a PostgreSQL advisory lock per
 * module schema: the first one applies, the others wait for it and then find
 * nothing pending. Without the lock two of them race to create the schema and
 * its migrations table, and one fails.
 */
export async function migrateModule(
  orm: MikroORM,
  mod: Pick<AnyModule, 'schema' | 'migrations'>,
  opts: { lock: boolean } = { lock: true },
): Promise<string[]> {
  const applied = await orm.em
    .fork()
    .getConnection()
    .execute<{ name: string }[]>(`select "name" from "${mod.schema}"."mikro_orm_migrations"`)
    .then((rows) => new Set(rows.map((r) => r.name)))
    .catch(() => new Set<string>());
  if (mod.migrations.names.every((name) => applied.has(name))) return [];
  const release = opts.lock ? await advisoryLock(orm, `toko:migrations:${mod.schema}`) : undefined;
  try {
    orm.config.set('migrations', { ...orm.config.get('migrations'), migrationsList: await mod.migrations.load() });
    const { Migrator } = await import('@mikro-orm/migrations');
    Migrator.register(orm);
    // The migrator reads the table again: under the lock, what another migrator applied meanwhile counts as applied.
    return (await orm.getMigrator().up()).map((m) => m.name);
  } finally {
    await release?.();
  }
}

/**
 * Takes a session-level advisory lock on a connection of its own, outside
 * the pool: the migrator needs pooled connections while the lock is held,
 * and a pool of one would otherwise wait on itself. Closing the connection
 * releases the lock even if the unlock is never sent (a crash).
 */
async function advisoryLock(orm: MikroORM, key: string): Promise<() => Promise<void>> {
  const client = orm.em.getConnection().getKnex().client;
  const conn = (await client.acquireRawConnection()) as { query(sql: string, values: unknown[]): Promise<unknown> };
  try {
    await conn.query('select pg_advisory_lock(hashtextextended($1, 0))', [key]);
  } catch (err) {
    await client.destroyRawConnection(conn);
    throw err;
  }
  return () => client.destroyRawConnection(conn);
}
