import type { MikroORM } from '@mikro-orm/postgresql';
import type { Sql, SqlTx } from '../../kit/sql.ts';

interface PgClient {
  query(config: { text: string; values?: readonly unknown[]; name?: string }): Promise<{ rows: unknown[] }>;
}

interface KnexClient {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): Promise<void>;
}

/**
 * `Sql` over the connection pool of a module's MikroORM instance: the same
 * connections, limits and pool metrics as the ORM, without its query
 * builder and unit of work in between.
 */
export function sqlOf(orm: MikroORM): Sql {
  const client = () => (orm.em.getConnection().getKnex() as unknown as { client: KnexClient }).client;
  const run = async <R>(conn: PgClient, text: string, values?: readonly unknown[], name?: string): Promise<R[]> =>
    (await conn.query(name ? { text, values, name } : { text, values })).rows as R[];
  return {
    async query<R>(text: string, values?: readonly unknown[], name?: string): Promise<R[]> {
      const knex = client();
      const conn = await knex.acquireConnection();
      try {
        return await run<R>(conn, text, values, name);
      } finally {
        await knex.releaseConnection(conn);
      }
    },
    async transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T> {
      const knex = client();
      const conn = await knex.acquireConnection();
      try {
        await run(conn, 'begin');
        let result: T;
        try {
          result = await fn({ query: (text, values, name) => run(conn, text, values, name) });
        } catch (err) {
          await run(conn, 'rollback').catch(() => undefined);
          throw err;
        }
        await run(conn, 'commit');
        return result;
      } finally {
        await knex.releaseConnection(conn);
      }
    },
  };
}
