/**
 * The order ceiling: what the database allows for one durable order per
 * transaction, with nothing but node `pg` in between. Per order, in one
 * transaction: `update products set stock = stock - q where id = $1 and
 * stock >= q` for each line, insert the order row, insert an outbox row,
 * commit. `connections` loops share a pool of that many connections for
 * `seconds`, choosing products as toko's scenario does (one hot product, or
 * distinct random ones from a catalogue of 36).
 *
 * As a child process: node --import tsx bench/order-ceiling.ts <json options>,
 * prints one JSON line with the figures. Its tables live in the schema
 * `bench_ceiling` of the database it is given, made afresh each run.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';

export interface CeilingOptions {
  databaseUrl: string;
  connections: number;
  seconds: number;
  lines: number;
  spread: boolean;
}

const CATALOGUE = 36;

async function setup(pool: pg.Pool): Promise<void> {
  await pool.query(`drop schema if exists bench_ceiling cascade`);
  await pool.query(`create schema bench_ceiling`);
  await pool.query(
    `create table bench_ceiling.products (id varchar(24) primary key, name varchar(200) not null, price bigint not null, stock integer not null)`,
  );
  await pool.query(
    `create table bench_ceiling.orders (id uuid primary key, user_id varchar(64) not null, status varchar(16) not null, lines jsonb not null, total bigint not null, created_at timestamptz not null default now())`,
  );
  await pool.query(
    `create table bench_ceiling.outbox (id uuid primary key, type varchar(100) not null, payload jsonb not null, status varchar(16) not null default 'pending', occurred_at timestamptz not null default now())`,
  );
  await pool.query(
    `insert into bench_ceiling.products select lpad(to_hex(g), 24, '0'), 'Product ' || g, 1500000, 50000000 from generate_series(1, ${CATALOGUE}) g`,
  );
}

function choose(o: CeilingOptions): string[] {
  const hex = (n: number) => n.toString(16).padStart(24, '0');
  if (!o.spread) return Array.from({ length: o.lines }, (_, i) => hex(i + 1));
  const chosen = new Set<string>();
  while (chosen.size < o.lines) chosen.add(hex(1 + Math.floor(Math.random() * CATALOGUE)));
  return [...chosen].sort();
}

async function order(client: pg.PoolClient, o: CeilingOptions): Promise<void> {
  const ids = choose(o);
  await client.query('begin');
  try {
    const lines = [];
    for (const id of ids) {
      const r = await client.query<{ name: string; price: string }>(
        'update bench_ceiling.products set stock = stock - $2 where id = $1 and stock >= $2 returning name, price',
        [id, 1],
      );
      if (!r.rows[0]) throw new Error('out of stock');
      lines.push({ productId: id, quantity: 1, name: r.rows[0].name, unitPrice: Number(r.rows[0].price) });
    }
    const id = randomUUID();
    const total = lines.reduce((s, l) => s + l.unitPrice * l.quantity, 0);
    const body = JSON.stringify(lines);
    await client.query(
      `insert into bench_ceiling.orders (id, user_id, status, lines, total) values ($1, $2, 'confirmed', $3, $4)`,
      [id, 'bench', body, total],
    );
    await client.query(`insert into bench_ceiling.outbox (id, type, payload) values ($1, 'order.confirmed', $2)`, [
      randomUUID(),
      JSON.stringify({ id, lines, total }),
    ]);
    await client.query('commit');
  } catch (err) {
    await client.query('rollback');
    throw err;
  }
}

export async function runCeiling(
  o: CeilingOptions,
): Promise<{ rps: number; p50: number; p99: number; orders: number; errors: number }> {
  const pool = new pg.Pool({ connectionString: o.databaseUrl, max: o.connections });
  await setup(pool);
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + o.seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: o.connections }, async () => {
      const client = await pool.connect();
      try {
        while (performance.now() < until) {
          const t = performance.now();
          try {
            await order(client, o);
            latencies.push(performance.now() - t);
          } catch {
            errors++;
          }
        }
      } finally {
        client.release();
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  await pool.query(`drop schema if exists bench_ceiling cascade`);
  await pool.end();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 100) / 100;
  return { rps: Math.round(latencies.length / elapsed), p50: at(0.5), p99: at(0.99), orders: latencies.length, errors };
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const result = await runCeiling(JSON.parse(process.argv[2]!) as CeilingOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
