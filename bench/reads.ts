import { freePorts } from '../test/helpers/wait.ts';
import { benchCold } from './cold.ts';
import { benchLadder } from './ladder-bench.ts';
import { LOAD_COLUMNS, ratio, table } from './report.ts';
import {
  ensurePeerPackages,
  freshPgDatabase,
  seedProducts,
  seedUsers,
  startCeiling,
  startPeer,
  startToko,
  type Target,
  type Users,
} from './targets.ts';
import { figures, takeTurns, type LoadResult, type LoadSpec, type RunFigures } from './wrk.ts';

export interface ReadOptions {
  adminUrl: string;
  seconds: number;
  rounds: number;
  connections: number;
  /** Parts left out (`--skip=ladder,cold`): the main scenarios, the ladder, the cold reads. */
  skip?: string[];
}

type TargetName = 'ceiling' | 'peer' | 'toko' | 'toko-embedded';

interface Scenario {
  name: string;
  /** The request per target, for the targets that serve this scenario. */
  spec: Partial<Record<TargetName, Omit<LoadSpec, 'connections' | 'seconds'>>>;
}

/** Figures are medians over the rounds. */
export interface ReadRow extends RunFigures {
  scenario: string;
  target: TargetName;
  connections: number;
  rounds: LoadResult[];
}

export interface ReadRatios {
  scenario: string;
  tokoOverPeer?: number;
  tokoOverCeiling?: number;
  embeddedOverPostgres?: number;
  tokoP99?: number;
  peerP99?: number;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

function scenarios(
  t: Partial<Record<TargetName, Target>>,
  users: Partial<Record<TargetName, Users>>,
  products: Partial<Record<TargetName, string>>,
): Scenario[] {
  const url = (name: TargetName, p: string) => ({ url: `${t[name]!.url}${p}` });
  const tokos: TargetName[] = ['toko', 'toko-embedded'];
  const each = (names: TargetName[], f: (n: TargetName) => Omit<LoadSpec, 'connections' | 'seconds'>) =>
    Object.fromEntries(names.filter((n) => t[n]).map((n) => [n, f(n)]));
  return [
    { name: 'GET /health', spec: each(['ceiling', 'peer', ...tokos], (n) => url(n, '/health')) },
    {
      name: 'GET /users/:id',
      spec: each(['peer', ...tokos], (n) => ({
        ...url(n, `/api/v1/users/${users[n]!.customerId}`),
        headers: bearer(users[n]!.customerToken),
      })),
    },
    {
      name: 'GET /users/me',
      spec: each(tokos, (n) => ({ ...url(n, '/api/v1/users/me'), headers: bearer(users[n]!.customerToken) })),
    },
    {
      name: 'GET /users?limit=50',
      spec: each(['peer', ...tokos], (n) => ({
        ...url(n, '/api/v1/users?limit=50'),
        headers: bearer(users[n]!.adminToken),
      })),
    },
    { name: 'GET /products/:id', spec: each(tokos, (n) => url(n, `/api/v1/products/${products[n]}`)) },
    { name: 'GET /products?limit=20', spec: each(tokos, (n) => url(n, '/api/v1/products?limit=20')) },
  ];
}

/**
 * The read scenarios against the bare-node ceiling, the FastAPI peer, toko
 * on PostgreSQL and toko on its embedded database, all started side by side;
 * within each scenario the targets take turns, round after round, so noise
 * on the machine hits all of them alike. Rows hold the medians.
 */
export async function benchReads(o: ReadOptions): Promise<{
  rows: ReadRow[];
  ratios: ReadRatios[];
  ladder?: Awaited<ReturnType<typeof benchLadder>>;
  cold?: Awaited<ReturnType<typeof benchCold>>;
}> {
  ensurePeerPackages();
  const [ceilingPort, peerPort, tokoPort, embeddedPort] = await freePorts(4);
  const tokoDb = await freshPgDatabase(o.adminUrl, 'toko_bench');
  const peerDb = await freshPgDatabase(o.adminUrl, 'peer_bench');
  const targets: Partial<Record<TargetName, Target>> = {};
  try {
    targets.ceiling = await startCeiling(ceilingPort!);
    targets.peer = await startPeer(peerPort!, peerDb.url);
    targets.toko = await startToko('toko', tokoPort!, tokoDb.url);
    targets['toko-embedded'] = await startToko('toko-embedded', embeddedPort!, undefined);
    const users: Partial<Record<TargetName, Users>> = {};
    const products: Partial<Record<TargetName, string>> = {};
    for (const n of ['peer', 'toko', 'toko-embedded'] as const) users[n] = await seedUsers(targets[n]!.url, 60);
    for (const n of ['toko', 'toko-embedded'] as const)
      products[n] = (await seedProducts(targets[n]!.url, users[n]!.adminToken)).hot;

    const skip = new Set(o.skip ?? []);
    const main = skip.has('scenarios') ? undefined : mainScenarios(scenarios(targets, users, products), o);
    const { rows, ratios } = (await main) ?? { rows: [], ratios: [] };
    const ladder = skip.has('ladder')
      ? undefined
      : await benchLadder({ ...o, ceiling: targets.ceiling, toko: targets.toko, tokoToken: users.toko!.customerToken });
    const cold = skip.has('cold')
      ? undefined
      : await benchCold({
          ...o,
          toko: targets.toko,
          tokoDatabaseUrl: tokoDb.url,
          peer: targets.peer,
          peerDatabaseUrl: peerDb.url,
        });
    return { rows, ratios, ladder, cold };
  } finally {
    for (const t of Object.values(targets)) await t.stop();
    await tokoDb.drop();
    await peerDb.drop();
  }
}

/** The read scenarios, the targets taking turns within each; rows hold the medians. */
async function mainScenarios(list: Scenario[], o: ReadOptions): Promise<{ rows: ReadRow[]; ratios: ReadRatios[] }> {
  const print = table(
    `reads: ${o.connections} connections, ${o.seconds} s per run, median of ${o.rounds} rounds (targets take turns)`,
    [
      { name: 'scenario', width: 24, left: true },
      { name: 'target', width: 14, left: true },
      { name: 'req/s', width: 8 },
      ...LOAD_COLUMNS,
    ],
  );
  const rows: ReadRow[] = [];
  for (const s of list) {
    const runs = await takeTurns(s.spec, o);
    for (const [target, results] of runs) {
      const row: ReadRow = {
        scenario: s.name,
        target,
        connections: o.connections,
        ...figures(results),
        rounds: results,
      };
      rows.push(row);
      print([row.scenario, row.target, row.rps, row.p50, row.p99, row.errors, row.non2xx]);
    }
  }

  return { rows, ratios: ratiosOf(rows) };
}

/** toko against the peer, the ceiling and itself embedded, per scenario; printed as a table. */
function ratiosOf(rows: ReadRow[]): ReadRatios[] {
  const ratios: ReadRatios[] = [];
  const printRatio = table('reads: ratios', [
    { name: 'scenario', width: 24, left: true },
    { name: 'toko/peer', width: 10 },
    { name: 'toko/ceil', width: 10 },
    { name: 'emb/pg', width: 8 },
    { name: 'toko p99', width: 9 },
    { name: 'peer p99', width: 9 },
  ]);
  const ceiling = rows.find((r) => r.target === 'ceiling');
  for (const name of [...new Set(rows.map((r) => r.scenario))]) {
    const get = (t: TargetName) => rows.find((r) => r.scenario === name && r.target === t);
    const toko = get('toko');
    const x: ReadRatios = {
      scenario: name,
      tokoOverPeer: ratio(toko?.rps, get('peer')?.rps),
      // Every scenario against the one ceiling there is (bare node answering /health's JSON).
      tokoOverCeiling: ratio(toko?.rps, ceiling?.rps),
      embeddedOverPostgres: ratio(get('toko-embedded')?.rps, toko?.rps),
      tokoP99: toko?.p99,
      peerP99: get('peer')?.p99,
    };
    ratios.push(x);
    printRatio([name, x.tokoOverPeer, x.tokoOverCeiling, x.embeddedOverPostgres, x.tokoP99, x.peerP99]);
  }
  return ratios;
}
