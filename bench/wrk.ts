import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { median } from './report.ts';

/** One load run's figures: requests per second, latency in ms, failures. */
export interface LoadResult {
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  requests: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Answers with a status of 400 or more. */
  non2xx: number;
}

/** What a table row keeps of a run (or of the median of runs). */
export type RunFigures = Pick<LoadResult, 'rps' | 'p50' | 'p99' | 'errors' | 'non2xx'>;

export interface LoadSpec {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  /** A fixed body for every request. */
  body?: string;
  /**
   * Lua expression evaluated per request that yields the body (it may use
   * the `ids` table and the `pick` helper: n distinct random ids).
   */
  bodyLua?: string;
  ids?: string[];
  /** Paths (with query) requested in random order, one per request, instead of the url's own path: spreads reads over many ids. */
  paths?: string[];
  connections: number;
  seconds: number;
}

/** Installs a Debian package when its command is missing (the bench's tools: wrk, the split gateway's nginx). */
export function ensureCommand(command: string, versionArgs: string[], pkg: string): void {
  try {
    execFileSync(command, versionArgs, { stdio: 'ignore' });
  } catch (err) {
    // `wrk --version` exits 1 after printing; only a missing binary is ENOENT.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return;
    process.stdout.write(`installing ${command} (apt-get install ${pkg})\n`);
    execFileSync('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`], {
      stdio: 'inherit',
    });
  }
}

/** wrk: C, one thread, little CPU per request; the bench's load generator. */
export const ensureWrk = (): void => ensureCommand('wrk', ['--version'], 'wrk');

const lua = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

function script(spec: LoadSpec): string {
  const lines: string[] = [];
  lines.push(`wrk.method = ${lua(spec.method ?? 'GET')}`);
  for (const [k, v] of Object.entries(spec.headers ?? {})) lines.push(`wrk.headers[${lua(k)}] = ${lua(v)}`);
  if (spec.body !== undefined) lines.push(`wrk.body = ${lua(spec.body)}`);
  if (spec.bodyLua) {
    lines.push(`local ids = { ${(spec.ids ?? []).map(lua).join(', ')} }`);
    lines.push(`local function pick(n)
  local chosen, out = {}, {}
  while #out < n do
    local id = ids[math.random(#ids)]
    if not chosen[id] then chosen[id] = true; out[#out + 1] = id end
  end
  return out
end`);
    lines.push(`function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end`);
    lines.push(`function request() return wrk.format(nil, nil, nil, ${spec.bodyLua}) end`);
  }
  if (spec.paths?.length) {
    if (spec.bodyLua) throw new Error('a load spec takes paths or bodyLua, not both');
    lines.push(`local paths = { ${spec.paths.map(lua).join(', ')} }`);
    lines.push(`function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1000000)) end`);
    lines.push(`function request() return wrk.format(nil, paths[math.random(#paths)]) end`);
  }
  lines.push(`function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRKJSON {\\"requests\\":%d,\\"us\\":%d,\\"errors\\":%d,\\"status\\":%d,\\"p50\\":%d,\\"p90\\":%d,\\"p99\\":%d,\\"max\\":%d}\\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end`);
  return lines.join('\n');
}

/** Drives `spec.url` with wrk (one thread, `connections` keep-alive connections) for `seconds`. */
export async function load(spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(tmpdir(), 'toko-wrk-'));
  const file = path.join(dir, 'script.lua');
  writeFileSync(file, script(spec));
  try {
    const out = await new Promise<string>((resolve, reject) => {
      const c = spawn(
        'wrk',
        ['-t1', `-c${spec.connections}`, `-d${spec.seconds}s`, '--timeout', '10s', '-s', file, spec.url],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let text = '';
      c.stdout.on('data', (d: Buffer) => (text += d.toString()));
      c.on('error', reject);
      c.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}: ${text}`))));
    });
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (!line) throw new Error(`wrk printed no summary: ${out}`);
    const r = JSON.parse(line.slice(8)) as {
      requests: number;
      us: number;
      errors: number;
      status: number;
      p50: number;
      p90: number;
      p99: number;
      max: number;
    };
    const ms = (us: number) => Math.round(us / 10) / 100;
    return {
      rps: Math.round(r.requests / (r.us / 1e6)),
      p50: ms(r.p50),
      p90: ms(r.p90),
      p99: ms(r.p99),
      max: ms(r.max),
      requests: r.requests,
      errors: r.errors,
      non2xx: r.status,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A second of warm-up per target (JIT, pools, caches), not counted; then `rounds` runs, the targets taking turns. */
export async function takeTurns<N extends string>(
  specs: Partial<Record<N, Omit<LoadSpec, 'connections' | 'seconds'>>>,
  o: { connections: number; seconds: number; rounds: number },
): Promise<Map<N, LoadResult[]>> {
  const runs = new Map<N, LoadResult[]>();
  for (const spec of Object.values(specs) as LoadSpec[])
    await load({ ...spec, connections: o.connections, seconds: 1 });
  for (let r = 0; r < o.rounds; r++) {
    for (const [name, spec] of Object.entries(specs) as [N, LoadSpec][]) {
      runs.set(name, [
        ...(runs.get(name) ?? []),
        await load({ ...spec, connections: o.connections, seconds: o.seconds }),
      ]);
    }
  }
  return runs;
}

/** The medians of one target's rounds. */
export const figures = (results: LoadResult[]): RunFigures => ({
  rps: Math.round(median(results.map((x) => x.rps))),
  p50: median(results.map((x) => x.p50)),
  p99: median(results.map((x) => x.p99)),
  errors: results.reduce((a, x) => a + x.errors, 0),
  non2xx: results.reduce((a, x) => a + x.non2xx, 0),
});
