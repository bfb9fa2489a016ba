import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedPostgres } from './embedded-postgres.ts';

let dir: string;
let server: EmbeddedPostgres;
let a: pg.Pool;
let b: pg.Pool;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'toko-pglite-'));
  server = new EmbeddedPostgres({ dataDir: dir, maxConnections: 60, logger: pino({ level: 'silent' }) });
  await server.start();
  a = new pg.Pool({ connectionString: server.url, max: 4 });
  b = new pg.Pool({ connectionString: server.url, max: 4 });
  await a.query('create table counter (id int primary key, n int not null)');
  await a.query('insert into counter values (1, 0)');
});

afterAll(async () => {
  await Promise.all([a?.end(), b?.end()]);
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('embedded PostgreSQL over many connections', () => {
  it('keeps every parameterised query whole when eight connections send at once', async () => {
    // Each statement differs, so a Bind landing on another connection's Parse would show in `k`.
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (i % 2 ? a : b)
          .query<{ n: number; s: string; k: number }>(`select $1::int as n, $2::text as s, ${i} as k`, [i, `v${i}`])
          .then((r) => r.rows[0]),
      ),
    );
    results.forEach((row, i) => expect(row).toEqual({ n: i, s: `v${i}`, k: i }));
  });

  it('keeps extended-protocol batches whole while other connections run simple queries and transactions', async () => {
    // The stock socket server queued single messages: a simple query or BEGIN from one
    // connection between another's Parse and Bind dropped the unnamed statement
    // ("unnamed prepared statement does not exist"), or bound it to the wrong one.
    const pools = Array.from({ length: 6 }, () => new pg.Pool({ connectionString: server.url, max: 3 }));
    try {
      const work = Array.from({ length: 600 }, async (_, i) => {
        const pool = pools[i % pools.length]!;
        if (i % 3 === 0) {
          const c = await pool.connect();
          try {
            await c.query('begin');
            const r = await c.query<{ k: number }>(`select $1::int as k`, [i]);
            await c.query('commit');
            return r.rows[0]!.k === i;
          } finally {
            c.release();
          }
        }
        if (i % 3 === 1) return (await pool.query<{ k: number }>(`select ${i} as k`)).rows[0]!.k === i;
        const r = await pool.query<{ k: number; s: string }>(
          `select $1::int as k, $2::text as s from counter where id = $3`,
          [i, `v${i}`, 1],
        );
        return r.rows[0]!.k === i && r.rows[0]!.s === `v${i}`;
      });
      const outcomes = await Promise.allSettled(work);
      const wrong = outcomes.filter((o) => o.status === 'rejected' || o.value !== true);
      expect(wrong.map((o) => (o.status === 'rejected' ? String(o.reason) : 'wrong row')).slice(0, 3)).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  });

  it('keeps named prepared statements per connection, as a server does', async () => {
    // Two clients preparing the same name for different statements would collide in the one session.
    const pools = [0, 1, 2].map(() => new pg.Pool({ connectionString: server.url, max: 2 }));
    try {
      const answers = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const which = i % 3;
          const r = await pools[which]!.query<{ v: string }>({
            name: 'same-name',
            text: `select $1::text || '-${which}' as v`,
            values: [String(i)],
          });
          return r.rows[0]!.v === `${i}-${which}`;
        }),
      );
      expect(answers.every(Boolean)).toBe(true);
      // A new connection may prepare the name again once the old ones are gone.
      await Promise.all(pools.map((p) => p.end()));
      const fresh = new pg.Client({ connectionString: server.url });
      await fresh.connect();
      expect((await fresh.query<{ v: number }>({ name: 'same-name', text: 'select 7 as v' })).rows[0]!.v).toBe(7);
      await fresh.end();
    } finally {
      await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
    }
  });

  it('runs concurrent transactions one after another without losing an update', async () => {
    const increment = async (pool: pg.Pool) => {
      const c = await pool.connect();
      try {
        await c.query('begin');
        const { rows } = await c.query<{ n: number }>('select n from counter where id = $1', [1]);
        await c.query('update counter set n = $1 where id = $2', [rows[0]!.n + 1, 1]);
        await c.query('commit');
      } finally {
        c.release();
      }
    };
    await Promise.all(Array.from({ length: 40 }, (_, i) => increment(i % 2 ? a : b)));
    const { rows } = await a.query<{ n: number }>('select n from counter where id = 1');
    expect(rows[0]!.n).toBe(40);
  });

  it('goes on serving after a failing statement and a rolled-back transaction', async () => {
    await expect(a.query('select * from no_such_table')).rejects.toThrow(/no_such_table/);
    const c = await b.connect();
    await c.query('begin');
    await c.query('update counter set n = -1 where id = 1');
    await c.query('rollback');
    c.release();
    const { rows } = await a.query<{ n: number }>('select n from counter where id = 1');
    expect(rows[0]!.n).toBe(40);
  });

  it('rolls back the transaction of a connection that disappears mid-way', async () => {
    const c = new pg.Client({ connectionString: server.url });
    await c.connect();
    await c.query('begin');
    await c.query('update counter set n = 999 where id = 1');
    await c.end();
    const { rows } = await b.query<{ n: number }>('select n from counter where id = 1');
    expect(rows[0]!.n).toBe(40);
  });
});

describe('the data directory lock', () => {
  it('refuses a second embedded database on a directory in use', async () => {
    const second = new EmbeddedPostgres({ dataDir: dir, maxConnections: 1, logger: pino({ level: 'silent' }) });
    await expect(second.start()).rejects.toThrow(/in use by process/);
  });

  it('takes over the lock of a process that is gone, and frees it on stop', async () => {
    const { writeFileSync } = await import('node:fs');
    const other = mkdtempSync(path.join(tmpdir(), 'toko-pglite-'));
    // pid 2^22+1 is above Linux's pid_max default, so no live process has it.
    writeFileSync(path.join(other, 'toko.lock'), String(4194305));
    const pgl = new EmbeddedPostgres({ dataDir: other, maxConnections: 1, logger: pino({ level: 'silent' }) });
    await pgl.start();
    await pgl.stop();
    const { existsSync } = await import('node:fs');
    expect(existsSync(path.join(other, 'toko.lock'))).toBe(false);
    rmSync(other, { recursive: true, force: true });
  });
});
