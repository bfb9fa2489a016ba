import pg from 'pg';
import type { Logger } from 'pino';
import { MODULE_NAMES, type ModuleName } from '../config.ts';
import { withEventTables } from '../db/event-tables.ts';
import { MOVED_TABLE, MOVED_SQLSTATE } from '../db/moved.ts';
import { migrateModule, openModuleOrm } from '../db/orm.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';

/** How long one attempt at the write freeze's table locks waits, and how long all attempts may take. */
const LOCK_ATTEMPT_MS = 300;
const LOCK_DEADLINE_MS = 5_000;
const BATCH_ROWS = 500;

export interface MoveReport {
  module: ModuleName;
  tables: { table: string; rows: number; checksum: string }[];
  /** Rows the snapshot copy wrote, and rows the frozen delta wrote or deleted. */
  copied: number;
  delta: number;
  /** How long the module's writes were frozen (table locks held on the old copy). */
  freezeMs: number;
  lockAttempts: number;
}

type Client = pg.Client;
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** A module name and PostgreSQL URLs, checked before anything connects, each mistake in a plain sentence. */
export function checkMoveInput(module: string, urls: Record<string, string | undefined>): ModuleName {
  if (!(MODULE_NAMES as readonly string[]).includes(module))
    throw new Error(`unknown module "${module}": expected one of ${MODULE_NAMES.join(', ')}`);
  for (const [flag, url] of Object.entries(urls)) {
    if (!url) throw new Error(`${flag} needs a PostgreSQL URL (postgres://user@host:port/database)`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new Error(`${flag} is not a URL: expected postgres://user@host:port/database`);
    }
    if (!/^postgres(ql)?:$/.test(parsed.protocol))
      throw new Error(`${flag} must be a postgres:// URL (move-data moves PostgreSQL data), not ${parsed.protocol}//`);
  }
  if (urls['--from'] && urls['--from'] === urls['--to']) throw new Error('--to names the database the data is in');
  return module as ModuleName;
}

/** The URL without its password (in the authority or as a `password` parameter), for logs and messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (/pass|secret|key/i.test(key)) u.searchParams.set(key, '***');
    return u.toString().replace(/%2A%2A%2A/g, '***');
  } catch {
    return '(an unreadable URL)';
  }
}

/**
 * Settings that make a row's text the same on both servers whatever their
 * defaults: a `timestamptz` prints in the session's time zone, and dates,
 * intervals and floats in its styles; the checksums compare that text.
 */
const SAME_TEXT = [
  `set timezone = 'UTC'`,
  `set datestyle = 'ISO, MDY'`,
  `set intervalstyle = 'postgres'`,
  `set extra_float_digits = 3`,
  `set toko.moving = 'on'`,
];

async function connect(url: string): Promise<Client> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  // A connection lost between statements fails the statement that follows, with its message; never the process.
  client.on('error', () => undefined);
  await client.connect();
  for (const setting of SAME_TEXT) await client.query(setting);
  return client;
}

/** Which server and database a session is on, however its URL was spelled. */
async function identity(client: Client): Promise<string> {
  const where = await client
    .query<{ id: string }>(`select system_identifier::text as id from pg_control_system()`)
    .catch(() =>
      // A role that may not read the control file: the server's address as this session reaches it.
      client.query<{ id: string }>(
        `select coalesce(inet_server_addr()::text || ':' || inet_server_port()::text, 'local') as id`,
      ),
    );
  const { rows } = await client.query<{ db: string }>(`select current_database() as db`);
  return `${rows[0]!.db}@${where.rows[0]!.id}`;
}

/** The marker's newest row on this database (the module moved away from it), or undefined. */
async function markerOf(client: Client, schema: string): Promise<{ url: string; moved_at: Date } | undefined> {
  const { rows } = await client.query<{ t: string | null }>(`select to_regclass($1) as t`, [
    `${q(schema)}.${q(MOVED_TABLE)}`,
  ]);
  if (!rows[0]?.t) return undefined;
  const marker = await client.query<{ url: string; moved_at: Date }>(
    `select "url", "moved_at" from ${q(schema)}.${q(MOVED_TABLE)} order by "moved_at" desc limit 1`,
  );
  return marker.rows[0];
}

/** The module's tables on this database that hold data (not its migrations table, nor the moved marker). */
async function tablesOf(client: Client, schema: string): Promise<string[]> {
  const { rows } = await client.query<{ t: string }>(
    `select tablename as t from pg_tables where schemaname = $1 and tablename not in ('mikro_orm_migrations', $2) order by 1`,
    [schema, MOVED_TABLE],
  );
  return rows.map((r) => r.t);
}

/** A table of the module on this database that holds rows, and how many, or undefined. */
async function liveData(client: Client, schema: string): Promise<{ table: string; rows: number } | undefined> {
  for (const t of await tablesOf(client, schema)) {
    const { rows: n } = await client.query<{ n: string }>(`select count(*) as n from ${q(schema)}.${q(t)}`);
    if (Number(n[0]!.n) > 0) return { table: t, rows: Number(n[0]!.n) };
  }
  return undefined;
}

/**
 * Refuses a move that would lose data: from and to the same database (in
 * whatever spelling), from an old copy (the module already moved away from
 * it: its rows are stale), or onto a database that holds the module's live
 * data (rows, and no marker saying the module moved away from it).
 */
async function preflight(source: Client, target: Client, module: ModuleName, schema: string): Promise<void> {
  if ((await identity(source)) === (await identity(target)))
    throw new Error('--from and --to name the same database: nothing was moved');
  const moved = await markerOf(source, schema);
  if (moved)
    throw new Error(
      `the source is an old copy of ${module}: it moved to ${redact(moved.url)} at ${moved.moved_at.toISOString()}; move from there (nothing was moved)`,
    );
  const live = await liveData(target, schema);
  if (live && !(await markerOf(target, schema)))
    throw new Error(
      `the target already holds ${module}'s data (${live.rows} rows in ${schema}.${live.table}) and is not a copy it moved away from: nothing was moved`,
    );
}

/**
 * Sets each sequence of the module on the target where it is on the (frozen)
 * source: the outbox's `seq`, which orders events about one subject, goes on
 * from the last value given out, never back to 1.
 */
async function copySequences(source: Client, target: Client, schema: string): Promise<void> {
  const { rows } = await source.query<{ s: string }>(
    `select c.relname as s from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'S'`,
    [schema],
  );
  for (const { s: seq } of rows) {
    const name = `${q(schema)}.${q(seq)}`;
    const { rows: at } = await source.query<{ v: string; called: boolean }>(
      `select last_value as v, is_called as called from ${name}`,
    );
    await target.query(`select setval($1, $2, $3)`, [name, at[0]!.v, at[0]!.called]);
  }
}

/** The module's tables that hold data (not its migrations table, nor the moved marker). */
async function dataTables(client: Client, schema: string): Promise<string[]> {
  const tables = await tablesOf(client, schema);
  if (!tables.length) throw new Error(`the source database has no tables in schema "${schema}": nothing to move`);
  return tables;
}

/** Creates the module's schema on the target with the module's own migrations. */
async function migrateTarget(module: ModuleName, url: string, logger: Logger): Promise<void> {
  const def = MODULE_DEFINITIONS[module];
  const orm = await openModuleOrm(def, { clientUrl: url, poolMax: 2, timeoutMs: 10_000, logger });
  try {
    const migrations = withEventTables({
      schema: def.schema,
      module,
      events: def.contract.events,
      migrations: def.migrations,
      consumes: (('consumes' in def && def.consumes) || []).length > 0,
    });
    await migrateModule(orm, { schema: def.schema, migrations }, { lock: true });
  } finally {
    await orm.close(true);
  }
}

async function insertRows(target: Client, table: string, rows: unknown[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH_ROWS) {
    await target.query(`insert into ${table} select * from json_populate_recordset(null::${table}, $1::json)`, [
      JSON.stringify(rows.slice(i, i + BATCH_ROWS)),
    ]);
  }
}

/** Copies every table from the source's snapshot (one REPEATABLE READ transaction) into the emptied target. */
async function copySnapshot(source: Client, target: Client, schema: string, tables: string[]): Promise<number> {
  let copied = 0;
  await source.query('begin isolation level repeatable read read only');
  await target.query('begin');
  try {
    await target.query(`truncate ${tables.map((t) => `${q(schema)}.${q(t)}`).join(', ')}`);
    for (const t of tables) {
      const name = `${q(schema)}.${q(t)}`;
      const { rows } = await source.query(`select to_json(x) as r from ${name} x`);
      await insertRows(
        target,
        name,
        rows.map((r: { r: unknown }) => r.r),
      );
      copied += rows.length;
    }
    await target.query('commit');
  } catch (err) {
    await target.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    await source.query('rollback').catch(() => undefined);
  }
  return copied;
}

/** The table's primary-key columns, in key order. */
async function keyColumns(client: Client, schema: string, table: string): Promise<string[]> {
  const { rows } = await client.query<{ c: string }>(
    `select a.attname as c from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
     where i.indrelid = $1::regclass and i.indisprimary order by array_position(i.indkey, a.attnum)`,
    [`${q(schema)}.${q(table)}`],
  );
  if (!rows.length) throw new Error(`table ${schema}.${table} has no primary key: its changes cannot be found`);
  return rows.map((r) => r.c);
}

/** Each row's key (as JSON text) and a hash of the whole row. */
async function rowHashes(client: Client, name: string, keys: string[]): Promise<Map<string, string>> {
  const key = `json_build_array(${keys.map((k) => `x.${q(k)}`).join(', ')})::text`;
  const { rows } = await client.query<{ k: string; h: string }>(`select ${key} as k, md5(x::text) as h from ${name} x`);
  return new Map(rows.map((r) => [r.k, r.h]));
}

/** Makes the target's table equal the (frozen) source's: rows new or changed since the snapshot are written, rows gone are deleted. */
async function copyDelta(source: Client, target: Client, schema: string, table: string): Promise<number> {
  const name = `${q(schema)}.${q(table)}`;
  const keys = await keyColumns(source, schema, table);
  const [from, to] = await Promise.all([rowHashes(source, name, keys), rowHashes(target, name, keys)]);
  const changed = [...from].filter(([k, h]) => to.get(k) !== h).map(([k]) => k);
  const gone = [...to.keys()].filter((k) => !from.has(k));
  const match = `json_build_array(${keys.map((k) => `x.${q(k)}`).join(', ')})::text = any($1::text[])`;
  if (changed.length + gone.length) await target.query(`delete from ${name} x where ${match}`, [[...changed, ...gone]]);
  if (changed.length) {
    const { rows } = await source.query(`select to_json(x) as r from ${name} x where ${match}`, [changed]);
    await insertRows(
      target,
      name,
      rows.map((r: { r: unknown }) => r.r),
    );
  }
  return changed.length + gone.length;
}

/** A table's row count and an order-independent checksum of its rows. */
async function checksum(client: Client, name: string): Promise<{ rows: number; checksum: string }> {
  const { rows } = await client.query<{ n: string; c: string | null }>(
    `select count(*) as n, md5(coalesce(string_agg(h, '' order by h), '')) as c from (select md5(x::text) as h from ${name} x) s`,
  );
  return { rows: Number(rows[0]!.n), checksum: rows[0]!.c ?? '' };
}

/** Takes EXCLUSIVE locks on the tables (reads go on, writes wait), in short attempts so waiting writers are not held behind a long queue. */
async function freeze(source: Client, schema: string, tables: string[]): Promise<number> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    await source.query('begin');
    await source.query(`set local lock_timeout = ${LOCK_ATTEMPT_MS}`);
    try {
      await source.query(`lock table ${tables.map((t) => `${q(schema)}.${q(t)}`).join(', ')} in exclusive mode`);
      return attempt;
    } catch (err) {
      await source.query('rollback');
      if ((err as { code?: string }).code !== '55P03' || Date.now() - started > LOCK_DEADLINE_MS)
        throw new Error(
          `could not freeze the module's writes within ${LOCK_DEADLINE_MS} ms: ${(err as Error).message}`,
        );
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Makes every write to the module's tables on this database (TRUNCATE too) fail with MOVED_SQLSTATE, unless the session is move-data's own. */
async function guard(client: Client, schema: string, tables: string[]): Promise<void> {
  await client.query(`create or replace function ${q(schema)}.toko_moved_guard() returns trigger language plpgsql as $$
    begin
      if current_setting('toko.moving', true) = 'on' then return null; end if;
      raise exception 'the % module moved to another database: retry', '${schema}' using errcode = '${MOVED_SQLSTATE}';
    end $$`);
  for (const t of tables)
    await client.query(
      `create or replace trigger toko_moved_guard before insert or update or delete or truncate on ${q(schema)}.${q(t)} for each statement execute function ${q(schema)}.toko_moved_guard()`,
    );
}

/** Lifts the guard and the moved marker (a copy the module moves back to). */
async function unguard(client: Client, schema: string, tables: string[]): Promise<void> {
  for (const t of tables) await client.query(`drop trigger if exists toko_moved_guard on ${q(schema)}.${q(t)}`);
  await client.query(`drop table if exists ${q(schema)}.${q(MOVED_TABLE)}`);
}

/** Names the new database in the old one's marker, where every replica's watcher (src/db/moved.ts) finds it. */
async function markMoved(client: Client, schema: string, url: string): Promise<void> {
  await client.query(
    `create table if not exists ${q(schema)}.${q(MOVED_TABLE)} ("url" text not null, "moved_at" timestamptz not null default clock_timestamp())`,
  );
  await client.query(`insert into ${q(schema)}.${q(MOVED_TABLE)} ("url") values ($1)`, [url]);
}

async function verify(source: Client, target: Client, schema: string, tables: string[]): Promise<MoveReport['tables']> {
  const report: MoveReport['tables'] = [];
  for (const t of tables) {
    const name = `${q(schema)}.${q(t)}`;
    const [a, b] = await Promise.all([checksum(source, name), checksum(target, name)]);
    if (a.rows !== b.rows || a.checksum !== b.checksum)
      throw new Error(
        `${schema}.${t} differs after the copy (rows ${a.rows} → ${b.rows}, checksum ${a.checksum} → ${b.checksum}): nothing was switched`,
      );
    report.push({ table: t, ...a });
  }
  return report;
}

/** Under the freeze: the delta, the check, the target opened for writes, the source guarded and marked; returns the delta. */
async function switchOver(source: Client, target: Client, schema: string, tables: string[], to: string) {
  let delta = 0;
  for (const t of tables) delta += await copyDelta(source, target, schema, t);
  const checked = await verify(source, target, schema, tables);
  await copySequences(source, target, schema);
  await unguard(target, schema, tables);
  await guard(source, schema, tables);
  await markMoved(source, schema, to);
  return { delta, checked };
}

/**
 * `npm run move-data -- <module> --to <url> [--from <url>]`: the module's
 * schema created on `to` by its own migrations, its rows copied from a
 * snapshot of `from` while it keeps working, then its writes frozen (table
 * locks) for the delta, a per-table check of counts and checksums, and the
 * switch: the old copy refuses writes (503, retry) and names the new one,
 * which every replica's watcher follows. The old copy stays until `dropCopy`;
 * the same command with the URLs swapped moves the module back.
 */
export async function moveData(opts: {
  module: string;
  from?: string;
  to?: string;
  logger: Logger;
}): Promise<MoveReport> {
  const module = checkMoveInput(opts.module, { '--from': opts.from, '--to': opts.to });
  const schema = MODULE_DEFINITIONS[module].schema;
  const [from, to] = [opts.from!, opts.to!];
  const source = await connect(from);
  const target = await connect(to).catch(async (err: unknown) => {
    await source.end();
    throw err;
  });
  try {
    await preflight(source, target, module, schema);
    await migrateTarget(module, to, opts.logger);
    const tables = await dataTables(source, schema);
    const copied = await copySnapshot(source, target, schema, tables);
    opts.logger.info({ module, copied }, 'snapshot copied; freezing writes for the switch');
    const lockAttempts = await freeze(source, schema, tables);
    const frozenAt = performance.now();
    let result;
    try {
      result = await switchOver(source, target, schema, tables, to);
      await source.query('commit');
    } catch (err) {
      await source.query('rollback').catch(() => undefined);
      throw err;
    }
    const freezeMs = Math.round(performance.now() - frozenAt);
    opts.logger.info({ module, to: redact(to), delta: result.delta, freezeMs }, 'module moved');
    return { module, tables: result.checked, copied, delta: result.delta, freezeMs, lockAttempts };
  } finally {
    await Promise.all([source.end(), target.end()]);
  }
}

/**
 * `npm run move-data -- <module> --drop-copy <url>`: drops a moved module's
 * old copy, and only one that is marked moved. The schema stays with its
 * marker alone (a tombstone): a replica started later with the old URL finds
 * it and follows it to the new database before it migrates anything
 * (`followMoved`), instead of creating an empty copy.
 */
export async function dropCopy(opts: { module: string; url?: string }): Promise<void> {
  const module = checkMoveInput(opts.module, { '--drop-copy': opts.url });
  const schema = MODULE_DEFINITIONS[module].schema;
  const client = await connect(opts.url!);
  try {
    const marker = await markerOf(client, schema).catch(() => undefined);
    if (!marker)
      throw new Error(
        `${redact(opts.url!)} holds no moved copy of ${module} (no ${MOVED_TABLE} marker): nothing dropped`,
      );
    const table = `${q(schema)}.${q(MOVED_TABLE)}`;
    await client.query('begin');
    try {
      const { rows } = await client.query<{ url: string; moved_at: Date }>(`select "url", "moved_at" from ${table}`);
      await client.query(`drop schema ${q(schema)} cascade`);
      await client.query(`create schema ${q(schema)}`);
      await client.query(
        `create table ${table} ("url" text not null, "moved_at" timestamptz not null default clock_timestamp())`,
      );
      for (const r of rows) await client.query(`insert into ${table} values ($1, $2)`, [r.url, r.moved_at]);
      await client.query('commit');
    } catch (err) {
      await client.query('rollback').catch(() => undefined);
      throw err;
    }
  } finally {
    await client.end();
  }
}
