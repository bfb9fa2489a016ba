/**
 * Plain SQL on a module's own connection pool, for the hot paths where the
 * ORM's unit of work costs more than the query: `$1`-style placeholders,
 * rows as the driver returns them (timestamps as text, bigint as text).
 * A `name` makes the statement prepared once per connection.
 */
export interface Sql {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[], name?: string): Promise<R[]>;
  /** Runs `fn` on one connection inside BEGIN … COMMIT; ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlTx) => Promise<T>): Promise<T>;
}

export interface SqlTx {
  query<R = Record<string, unknown>>(text: string, values?: readonly unknown[], name?: string): Promise<R[]>;
}

/** PostgreSQL's SQLSTATE of an error thrown by a query, if it has one. */
export const sqlState = (err: unknown): string | undefined =>
  (err as { code?: unknown } | null)?.code as string | undefined;

/** `"<schema>"."<name>"`: a module names its tables through this, from the one constant that holds its schema's name. */
export const inSchema =
  (schema: string) =>
  (name: string): string =>
    `"${schema}"."${name}"`;
