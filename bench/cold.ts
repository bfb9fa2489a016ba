import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { freePorts } from '../test/helpers/wait.ts';
import { LOAD_COLUMNS, ratio, table } from './report.ts';
import { ADMIN, json, startToko, type Target } from './targets.ts';
import { figures, takeTurns, type LoadSpec, type RunFigures } from './wrk.ts';

export interface ColdOptions {
  /** toko on PostgreSQL, and its database. */
  toko: Target;
  tokoDatabaseUrl: string;
  peer: Target;
  peerDatabaseUrl: string;
  seconds: number;
  rounds: number;
  connections: number;
  /** Users written into each database (10,000). */
  users?: number;
}

export interface ColdRow extends RunFigures {
  scenario: string;
  target: string;
}

/** `count` customers written straight into a users table by SQL (no bcrypt, no HTTP): their ids. */
async function writeUsers(databaseUrl: string, table: string, idType: string, count: number): Promise<string[]> {
  const c = new pg.Client({ connectionString: databaseUrl });
  await c.connect();
  try {
    const tag = randomBytes(3).toString('hex');
    const r = await c.query<{ id: string }>(
      `insert into ${table} (id, email, username, password_hash, full_name, role, is_active, is_verified, created_at, updated_at)
       select gen_random_uuid()::${idType}, 'cold${tag}' || g || '@bench.example.com', 'cold${tag}' || g, 'not-a-hash',
              'Cold ' || g, 'customer', true, false, now() + g * interval '1 microsecond', now()
       from generate_series(1, $1::int) g returning id`,
      [count],
    );
    return r.rows.map((x) => x.id);
  } finally {
    await c.end();
  }
}

const adminToken = async (url: string) => {
  const r = await json<{ accessToken: string }>(`${url}/api/v1/users/login`, { body: ADMIN });
  if (r.status !== 200) throw new Error(`${url}: login answered ${r.status}`);
  return r.body.accessToken;
};

/**
 * Cold reads: 10,000 users written by SQL into toko's and the peer's
 * databases, then GET /users/:id spread over all of them (each request picks
 * an id at random, so toko's user cache mostly misses) and the first page of
 * the list, against toko, toko with its user cache off (USER_CACHE_TTL_MS=0,
 * on the same database) and the peer; the targets take turns.
 */
export async function benchCold(
  o: ColdOptions,
): Promise<{ rows: ColdRow[]; tokoOverPeer: Record<string, number | undefined> }> {
  const count = o.users ?? 10_000;
  const tokoIds = await writeUsers(o.tokoDatabaseUrl, '"users"."users"', 'uuid', count);
  const peerIds = await writeUsers(o.peerDatabaseUrl, '"peer"."users"', 'text', count);
  const [port] = await freePorts(1);
  const uncached = await startToko('toko-no-cache', port!, o.tokoDatabaseUrl, { env: { USER_CACHE_TTL_MS: '0' } });
  try {
    const targets: [string, Target, string[]][] = [
      ['toko', o.toko, tokoIds],
      ['toko-no-cache', uncached, tokoIds],
      ['peer', o.peer, peerIds],
    ];
    const byId: Record<string, Omit<LoadSpec, 'connections' | 'seconds'>> = {};
    const list: Record<string, Omit<LoadSpec, 'connections' | 'seconds'>> = {};
    for (const [name, t, ids] of targets) {
      const headers = { authorization: `Bearer ${await adminToken(t.url)}` };
      byId[name] = { url: `${t.url}/`, headers, paths: ids.map((id) => `/api/v1/users/${id}`) };
      list[name] = { url: `${t.url}/api/v1/users?limit=50`, headers };
    }
    const print = table(
      `cold reads: ${count} users, ${o.connections} connections, ${o.seconds} s per run, median of ${o.rounds} rounds`,
      [
        { name: 'scenario', width: 28, left: true },
        { name: 'target', width: 14, left: true },
        { name: 'req/s', width: 8 },
        ...LOAD_COLUMNS,
      ],
    );
    const rows: ColdRow[] = [];
    for (const [scenario, specs] of [
      [`GET /users/:id (${count} ids)`, byId],
      ['GET /users?limit=50', list],
    ] as const) {
      for (const [target, results] of await takeTurns(specs, o)) {
        const row = { scenario, target, ...figures(results) };
        rows.push(row);
        print([scenario, target, row.rps, row.p50, row.p99, row.errors, row.non2xx]);
      }
    }
    const rps = (s: string, t: string) => rows.find((r) => r.scenario.startsWith(s) && r.target === t)?.rps;
    const tokoOverPeer = {
      byId: ratio(rps('GET /users/:id', 'toko'), rps('GET /users/:id', 'peer')),
      byIdNoCache: ratio(rps('GET /users/:id', 'toko-no-cache'), rps('GET /users/:id', 'peer')),
      list: ratio(rps('GET /users?', 'toko'), rps('GET /users?', 'peer')),
    };
    process.stdout.write(`cold reads, toko/peer: ${JSON.stringify(tokoOverPeer)}\n`);
    return { rows, tokoOverPeer };
  } finally {
    await uncached.stop();
  }
}
