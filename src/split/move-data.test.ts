import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStoreOutage } from '../../kit/outage.ts';
import { Closer } from '../closer.ts';
import { loadConfig } from '../config.ts';
import { openDatabases } from '../db/databases.ts';
import { MOVED_SQLSTATE } from '../db/moved.ts';
import { MODULE_DEFINITIONS } from '../registry.ts';
import { dropCopy, moveData, redact, type MoveReport } from './move-data.ts';

/**
 * `npm run move-data` on two real PostgreSQL databases: the product module's
 * rows copied, a write made during the copy carried by the frozen delta, the
 * old copy refusing writes with the code that answers 503, a running
 * module's connections following the marker, the move back, and the drop.
 */
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const tag = randomBytes(5).toString('hex');
const dbUrl = (name: string) => Object.assign(new URL(ADMIN_URL), { pathname: `/${name}` }).toString();
const names = [`ext_mv_${tag}_a`, `ext_mv_${tag}_b`];
const [A, B] = names.map(dbUrl) as [string, string];
const silent = pino({ level: 'silent' });

async function sql<T = Record<string, unknown>>(url: string, text: string, values?: unknown[]): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values)).rows as T[];
  } finally {
    await client.end();
  }
}

const hasPostgres = await sql(ADMIN_URL, 'select 1').then(
  () => true,
  () => false,
);
const skip = !hasPostgres && !process.env.CI;
if (skip) console.warn(`move-data tests skipped: no PostgreSQL answers at ${ADMIN_URL} (set TEST_DATABASE_URL)`);

/**
 * Statements this process's pg clients send while `recording`, and the ones
 * the server rejects. Installed before the module opens its pool: each
 * pooled connection binds its `query` when it is made.
 */
type Query = (this: pg.Client, ...args: unknown[]) => unknown;
const proto = pg.Client.prototype as unknown as { query: Query };
const originalQuery = proto.query;
const statements = { ran: 0, failed: [] as string[] };
let recording = false;
proto.query = function (...args) {
  if (!recording) return originalQuery.apply(this, args);
  statements.ran++;
  const text = String((args[0] as { text?: string } | undefined)?.text ?? args[0]);
  const last = args.length - 1;
  if (typeof args[last] === 'function') {
    const callback = args[last] as (err: unknown, ...rest: unknown[]) => void;
    args[last] = (err: unknown, ...rest: unknown[]) => {
      if (err) statements.failed.push(text);
      callback(err, ...rest);
    };
  }
  const result = originalQuery.apply(this, args);
  if (result instanceof Promise) result.catch(() => statements.failed.push(text));
  return result;
};

/** `npm run move-data -- <args>` as its script runs it (src/split/move-data.command.ts, here from source). */
const command = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/split/move-data.command.ts', ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOG_LEVEL: 'info' },
    timeout: 60_000,
  });

const closer = new Closer(silent);
let running: Awaited<ReturnType<typeof openDatabases>>;

const insertProduct = (url: string, id: string, stock = 5) =>
  sql(
    url,
    `insert into products.products (id, name, description, price, stock, category, created_at, updated_at)
     values ($1, 'P', 'd', 100, $2, 'c', now(), now())`,
    [id.padEnd(24, 'x'), stock],
  );

beforeAll(async () => {
  if (skip) return;
  for (const n of names) await sql(ADMIN_URL, `create database "${n}"`);
  // The new server prints timestamps in another zone: the checksums must still agree.
  await sql(ADMIN_URL, `alter database "${names[1]}" set timezone to 'Asia/Tokyo'`);
  // The product module as a service runs it: on database A, migrated, watching for a move.
  const config = {
    ...loadConfig({ DATABASE_URL: A, LOG_LEVEL: 'silent', DB_POOL_MAX: '2' }),
    modules: ['product' as const],
  };
  running = await openDatabases(config, silent, closer, { migrate: true });
  for (let i = 0; i < 30; i++) await insertProduct(A, `p${i}`);
}, 60_000);

afterAll(async () => {
  proto.query = originalQuery;
  if (skip) return;
  await closer.run();
  for (const n of names) await sql(ADMIN_URL, `drop database if exists "${n}" with (force)`);
});

/** A logger that runs `onLine` on every line moveData logs. */
const watching = (onLine: (line: string) => void) =>
  pino(
    { level: 'info' },
    new Writable({
      write(chunk, _enc, done) {
        onLine(String(chunk));
        done();
      },
    }),
  );

describe('the URLs move-data prints', () => {
  it('never carry a password: in the authority, with no user, or as a parameter', () => {
    for (const url of [
      'postgres://shop:s3cret@db:5432/shop',
      'postgres://:s3cret@db/shop',
      'postgres://shop@db/shop?password=s3cret&sslmode=require',
      'postgres://shop:s3c@ret@db/shop',
      'not a url s3cret',
    ])
      expect(redact(url)).not.toMatch(/s3c/);
    expect(redact('postgres://shop:s3cret@db:5432/shop')).toBe('postgres://shop:***@db:5432/shop');
  });
});

describe.skipIf(skip)('npm run move-data', () => {
  it("while the module has not moved, its watch runs no statement that fails (nothing in the server's error log)", async () => {
    // Four looks (every 250 ms) on the running module's pooled connections.
    recording = true;
    await sleep(1_100);
    recording = false;
    expect(statements.ran).toBeGreaterThan(0);
    expect(statements.failed).toEqual([]);
  });

  it('rejects bad input with a sentence that names it', async () => {
    const cli = command(['nope', '--to', B]);
    expect(cli.status).toBe(1);
    expect(cli.stderr.trim().split('\n')).toEqual([
      'toko: move-data failed: unknown module "nope": expected one of user, product, order, notification',
    ]);
    expect(cli.stdout).toBe('');
    await expect(moveData({ module: 'nope', from: A, to: B, logger: silent })).rejects.toThrow(/unknown module "nope"/);
    await expect(moveData({ module: 'product', from: A, to: 'mongodb://x/y', logger: silent })).rejects.toThrow(
      /--to must be a postgres:\/\/ URL/,
    );
    await expect(moveData({ module: 'product', from: A, logger: silent })).rejects.toThrow(
      /--to needs a PostgreSQL URL/,
    );
    await expect(moveData({ module: 'product', from: A, to: A, logger: silent })).rejects.toThrow(
      /--to names the database/,
    );
    // The same database spelled another way, and a database that holds the module's live data, are refused.
    const sameAsA = `${A.replace(/^postgres:/, 'postgresql:')}${A.includes('?') ? '&' : '?'}application_name=other`;
    await expect(moveData({ module: 'product', from: A, to: sameAsA, logger: silent })).rejects.toThrow(
      /name the same database/,
    );
    await expect(moveData({ module: 'product', from: B, to: A, logger: silent })).rejects.toThrow(
      /already holds product's data \(30 rows in products\.products\)/,
    );
    expect(await sql(A, `select count(*)::int as n from products.products`)).toEqual([{ n: 30 }]);
  });

  it('copies, carries a write made during the copy, verifies, and guards the old copy', async () => {
    // A write in flight when the copy starts: the freeze waits for it, and the delta carries it.
    const writer = new pg.Client({ connectionString: A });
    await writer.connect();
    await writer.query('begin');
    await writer.query(`update products.products set stock = 42 where id = $1`, ['p0'.padEnd(24, 'x')]);
    let committed: Promise<unknown> | undefined;
    const logger = watching((line) => {
      if (line.includes('snapshot copied') && !committed)
        committed = new Promise((r) => setTimeout(r, 700)).then(() => writer.query('commit'));
    });
    const report = await moveData({ module: 'product', from: A, to: B, logger });
    await committed;
    await writer.end();

    expect(report.lockAttempts).toBeGreaterThan(1);
    expect(report.delta).toBeGreaterThanOrEqual(1);
    expect(report.tables.find((t) => t.table === 'products')?.rows).toBe(30);
    expect(await sql(B, `select stock from products.products where id = $1`, ['p0'.padEnd(24, 'x')])).toEqual([
      { stock: 42 },
    ]);
    const refused = await insertProduct(A, 'late').catch((e: unknown) => e);
    expect((refused as { code?: string }).code).toBe(MOVED_SQLSTATE);
    expect(isStoreOutage(refused)).toBe(true);
    const truncated = await sql(A, `truncate products.products`).catch((e: unknown) => e);
    expect((truncated as { code?: string }).code).toBe(MOVED_SQLSTATE);
    expect(await sql(A, `select url from products.toko_moved`)).toEqual([{ url: B }]);
  }, 60_000);

  it("moves a running module's connections to the new database", async () => {
    const db = running.get('product');
    if (db?.kind !== 'sql') throw new Error('product should be on SQL');
    await insertProduct(B, 'onlyinb');
    const seen = async () =>
      (await db.sql.query(`select 1 from products.products where id = $1`, ['onlyinb'.padEnd(24, 'x')])).length;
    const deadline = Date.now() + 20_000;
    while ((await seen().catch(() => 0)) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await seen()).toBe(1);
    await db.sql.query(`update products.products set stock = 7 where id = $1`, ['onlyinb'.padEnd(24, 'x')]);
  }, 30_000);

  it('refuses to move again from the old copy, and leaves the new one as it is', async () => {
    const before = await sql<{ n: number }>(B, `select count(*)::int as n from products.products`);
    await expect(moveData({ module: 'product', from: A, to: B, logger: silent })).rejects.toThrow(
      /the source is an old copy of product: it moved to/,
    );
    expect(await sql(B, `select count(*)::int as n from products.products`)).toEqual(before);
  });

  it('moves back with the same command, then drops only a marked old copy', async () => {
    await insertProduct(B, 'made-on-b');
    // Through the command line `npm run move-data` runs: one JSON report on stdout.
    const moved = command(['product', '--from', B, '--to', A]);
    expect(moved.status, moved.stderr).toBe(0);
    const back = JSON.parse(moved.stdout) as MoveReport;
    expect(back.tables.find((t) => t.table === 'products')?.rows).toBe(32);
    await insertProduct(A, 'after-back');
    expect((await insertProduct(B, 'refused').catch((e: { code?: string }) => e)) as { code?: string }).toMatchObject({
      code: MOVED_SQLSTATE,
    });
    await expect(dropCopy({ module: 'product', url: A })).rejects.toThrow(/holds no moved copy/);
    const dropped = command(['product', '--drop-copy', B]);
    expect(dropped.status, dropped.stderr).toBe(0);
    expect(JSON.parse(dropped.stdout)).toEqual({ module: 'product', dropped: B });
    expect(await sql(A, `select count(*)::int as n from products.products`)).toEqual([{ n: 33 }]);
    // Only the marker stays; a replica started with the old URL follows it before migrating anything.
    expect(await sql(B, `select tablename from pg_tables where schemaname = 'products'`)).toEqual([
      { tablename: 'toko_moved' },
    ]);
    const late = new Closer(silent);
    try {
      const config = { ...loadConfig({ DATABASE_URL: B, LOG_LEVEL: 'silent' }), modules: ['product' as const] };
      const db = (await openDatabases(config, silent, late, { migrate: true })).get('product');
      if (db?.kind !== 'sql') throw new Error('product should be on SQL');
      expect(await db.sql.query(`select count(*)::int as n from products.products`)).toEqual([{ n: 33 }]);
    } finally {
      await late.run();
    }
    expect(await sql(B, `select tablename from pg_tables where schemaname = 'products'`)).toEqual([
      { tablename: 'toko_moved' },
    ]);
  }, 60_000);
});

describe.skipIf(skip)('npm run move-data: a module with an outbox', () => {
  const pair = [`ext_mv_${tag}_c`, `ext_mv_${tag}_d`];
  const [C, D] = pair.map(dbUrl) as [string, string];
  const seq = `${MODULE_DEFINITIONS.order.schema}.outbox_seq_seq`;
  afterAll(async () => {
    for (const n of pair) await sql(ADMIN_URL, `drop database if exists "${n}" with (force)`);
  });

  it('carries the outbox sequence, so events written after the move come after those before it', async () => {
    for (const n of pair) await sql(ADMIN_URL, `create database "${n}"`);
    const opened = new Closer(silent);
    try {
      const config = { ...loadConfig({ DATABASE_URL: C, LOG_LEVEL: 'silent' }), modules: ['order' as const] };
      await openDatabases(config, silent, opened, { migrate: true });
    } finally {
      await opened.run();
    }
    for (let i = 0; i < 5; i++) await sql(C, `select nextval('${seq}')`);
    await moveData({ module: 'order', from: C, to: D, logger: silent });
    expect(await sql(D, `select nextval('${seq}')::int as n`)).toEqual([{ n: 6 }]);
  }, 60_000);
});
