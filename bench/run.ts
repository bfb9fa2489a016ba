/**
 * npm run bench [-- reads] [-- orders] [-- footprint] [-- replicas] [-- --no-split] [-- --skip=ladder,cold,scenarios]
 *
 * Measures toko beside what bounds it, in one run on this machine:
 * - reads: the bare node:http ceiling, the seed-style FastAPI peer
 *   (bench/peer/app.py) and toko on PostgreSQL and on its embedded database,
 *   taking turns (bench/reads.ts);
 * - orders: a bare-SQL order loop (bench/order-ceiling.ts) beside toko's
 *   POST /orders on PostgreSQL, embedded and split (bench/orders.ts);
 * - footprint: start-up and RSS of `npm start` and `npm run split` (bench/footprint.ts);
 * - replicas (only when named): reads and orders through the gateway with 1
 *   and 2 replicas of every service, what an order costs their processes,
 *   and how fast a change on one replica reaches the other (bench/replicas.ts).
 * With no section named, the first three run. Load comes from wrk (installed from
 * Debian's packages when missing). Prints tables and ratios and writes
 * bench/results/<date>-<sections>[-<BENCH_TAG>].json. PostgreSQL at BENCH_DATABASE_URL
 * (default the local server; BENCH_DB_PREFIX prefixes its databases' names);
 * BENCH_SECONDS per run (5), BENCH_ROUNDS (2). `reads` holds the main
 * scenarios, the ladder (bench/ladder-bench.ts) and the cold reads
 * (bench/cold.ts); --skip leaves some out.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, freemem, totalmem } from 'node:os';
import path from 'node:path';
import { benchFootprint } from './footprint.ts';
import { benchOrders } from './orders.ts';
import { ROOT } from './procs.ts';
import { benchReads } from './reads.ts';
import { benchReplicas } from './replicas.ts';
import { ensureCommand, ensureWrk } from './wrk.ts';

const SECTIONS = ['reads', 'orders', 'footprint', 'replicas'] as const;
const asked = SECTIONS.filter((s) => process.argv.includes(s));
const sections = asked.length ? asked : SECTIONS.filter((s) => s !== 'replicas');
const withSplit = !process.argv.includes('--no-split');
const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const skip = (process.argv.find((a) => a.startsWith('--skip='))?.slice(7) ?? '').split(',').filter(Boolean);
const tag = process.env.BENCH_TAG ? `-${process.env.BENCH_TAG.replace(/[^\w.-]/g, '_')}` : '';

ensureWrk();
if (withSplit && sections.some((s) => s !== 'reads')) ensureCommand('nginx', ['-v'], 'nginx-light');
const result: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    freeGiB: Math.round(freemem() / 2 ** 30),
    node: process.version,
  },
  secondsPerRun: seconds,
  loadGenerator: 'wrk -t1',
};
mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true });
const file = path.join(
  ROOT,
  'bench',
  'results',
  `${String(result.date).slice(0, 10)}-${sections.join('-')}${tag}.json`,
);
/** Written after every section, so a failure later keeps what was measured. */
const save = () => writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
if (sections.includes('reads')) {
  result.reads = await benchReads({ adminUrl, seconds, rounds, connections: 64, skip });
  save();
}
if (sections.includes('orders')) {
  result.orders = await benchOrders({ adminUrl, seconds, connections: [16, 64], withSplit });
  save();
}
if (sections.includes('replicas')) {
  result.replicas = await benchReplicas({ adminUrl, seconds, rounds, connections: 64 });
  save();
}
if (sections.includes('footprint')) {
  result.footprint = await benchFootprint({ adminUrl, withSplit });
  save();
}
process.stdout.write(`\nwritten ${path.relative(ROOT, file)}\n`);
