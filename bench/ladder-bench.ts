import type { ChildProcess } from 'node:child_process';
import { freePorts } from '../test/helpers/wait.ts';
import { LADDER_PATH, ladderKeys, ladderToken, RUNGS } from './ladder.ts';
import { launch, stopTree, waitHttp } from './procs.ts';
import { LOAD_COLUMNS, table } from './report.ts';
import type { Target } from './targets.ts';
import { figures, takeTurns, type LoadSpec, type RunFigures } from './wrk.ts';

export interface LadderRow extends RunFigures {
  rung: string;
  /** 1e6 / rate: the microseconds of the server's time each request took at this load. */
  usPerRequest: number;
  /** usPerRequest less the rung below's: what this layer costs. */
  addedUs?: number;
}

export interface LadderOptions {
  ceiling: Target;
  toko: Target;
  /** A customer token of `toko`, for its /users/me. */
  tokoToken: string;
  seconds: number;
  rounds: number;
  connections: number;
  /** Node flags for every rung's process (the profile passes --cpu-prof). */
  nodeFlags?: string[];
}

/** Every rung in its own process on `ports`, ready to answer the ladder's route. */
export async function startRungs(
  ports: number[],
  keys: { privateKey: string; publicKey: string },
  token: string,
  nodeFlags: string[] = [],
  rungs: readonly string[] = RUNGS,
): Promise<Target[]> {
  const started: Target[] = [];
  try {
    for (const [i, rung] of rungs.entries()) {
      const child: ChildProcess = launch(process.execPath, [...nodeFlags, '--import', 'tsx', 'bench/ladder.ts'], {
        LADDER_RUNG: rung,
        PORT: String(ports[i]),
        LADDER_PUBLIC_KEY: keys.publicKey,
      });
      const url = `http://127.0.0.1:${ports[i]}`;
      started.push({ name: rung, url, child, stop: () => stopTree(child) });
      await waitHttp(`${url}${LADDER_PATH}`, 30_000, child, { headers: { authorization: `Bearer ${token}` } });
    }
    return started;
  } catch (err) {
    for (const t of started) await t.stop();
    throw err;
  }
}

/**
 * The ladder beside the ceiling and toko, in one run: node:http, then every
 * rung of bench/ladder.ts, then toko's /health and /users/me; the targets
 * take turns. Prints each rung's rate, its microseconds per request and
 * what it adds to the rung below.
 */
export async function benchLadder(o: LadderOptions): Promise<LadderRow[]> {
  const keys = ladderKeys();
  const token = ladderToken(keys);
  const rungs = await startRungs(await freePorts(RUNGS.length), keys, token, o.nodeFlags);
  try {
    const auth = { authorization: `Bearer ${token}` };
    const specs: Record<string, Omit<LoadSpec, 'connections' | 'seconds'>> = {
      'node:http': { url: `${o.ceiling.url}/health` },
    };
    for (const r of rungs) specs[r.name] = { url: `${r.url}${LADDER_PATH}`, headers: auth };
    specs['toko /health'] = { url: `${o.toko.url}/health` };
    specs['toko /users/me'] = {
      url: `${o.toko.url}/api/v1/users/me`,
      headers: { authorization: `Bearer ${o.tokoToken}` },
    };
    const runs = await takeTurns(specs, o);
    const print = table(
      `ladder: ${o.connections} connections, ${o.seconds} s per run, median of ${o.rounds} rounds (µs = 1e6 / rate)`,
      [
        { name: 'rung', width: 34, left: true },
        { name: 'req/s', width: 8 },
        { name: 'µs/req', width: 7 },
        { name: '+µs', width: 6 },
        ...LOAD_COLUMNS,
      ],
    );
    const rows: LadderRow[] = [];
    for (const [rung, results] of runs) {
      const f = figures(results);
      const usPerRequest = f.rps ? Math.round((1e6 / f.rps) * 10) / 10 : 0;
      const below = rows.at(-1);
      const addedUs =
        below && !rung.startsWith('toko') ? Math.round((usPerRequest - below.usPerRequest) * 10) / 10 : undefined;
      const row: LadderRow = { rung, ...f, usPerRequest, addedUs };
      rows.push(row);
      print([rung, row.rps, row.usPerRequest, row.addedUs, row.p50, row.p99, row.errors, row.non2xx]);
    }
    return rows;
  } finally {
    for (const r of rungs) await r.stop();
  }
}
