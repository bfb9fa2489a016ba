import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { MODULE_NAMES, type ModuleName } from '../config.ts';

const run = promisify(execFile);

/** `host:port` each, a host being a name, an IPv4 address or a bracketed IPv6 one. */
const ADDRESS = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** The addresses of `--to`, checked, each mistake in a sentence. */
export function parseAddresses(to: string | undefined): string[] {
  if (!to) throw new Error('--to needs the addresses of the service replicas: host:port[,host:port...]');
  const list = to.split(',').map((a) => a.trim());
  for (const a of list) {
    const m = ADDRESS.exec(a);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      throw new Error(`"${a}" is not an address: expected host:port (for example 127.0.0.1:3101)`);
  }
  return list;
}

export function checkModule(module: string | undefined): ModuleName {
  if (!module || !(MODULE_NAMES as readonly string[]).includes(module))
    throw new Error(`unknown module "${module ?? ''}": expected one of ${MODULE_NAMES.join(', ')}`);
  return module as ModuleName;
}

/** An upstream's one line (as the template renders it): its opening, and its body up to the closing brace. */
const upstreamLine = (name: string) => new RegExp(`^(\\s*upstream ${name} \\{)(.*)\\}\\s*$`, 'm');
const serverEntries = (body: string) => [...body.matchAll(/server ([^\s;]+)([^;]*);/g)];

/** An upstream body with its server entries replaced by `servers` (rendered), where the first one was. */
function withServers(body: string, servers: string[]): string {
  const rest = body.replace(/\s*server [^;]*;/g, '');
  const zone = /^\s*zone [^;]*;/.exec(rest)?.[0] ?? '';
  return `${zone} ${servers.join(' ')}${rest.slice(zone.length).trimEnd()} }`;
}

/**
 * The gateway configuration with the module's upstream (`upstream toko_<m>
 * { ... }`, one line, as the template renders it) serving `addresses`: each
 * gets the parameters its first server had (max_fails, fail_timeout); the
 * zone, keepalive and every other upstream stay as they were. The module's
 * routes, and an internal balancer of the module, follow their upstream; so
 * does the module's share of `toko_any` (the readiness upstream, which lists
 * every module's servers in module order) when it is laid out as the split
 * renders it (`readiness`: whether it was).
 */
export function reroute(conf: string, module: ModuleName, addresses: string[]): { conf: string; readiness: boolean } {
  const line = upstreamLine(`toko_${module}`);
  const found = line.exec(conf);
  if (!found)
    throw new Error(`the gateway configuration has no upstream toko_${module}: is it toko's rendered gateway?`);
  const servers = serverEntries(found[2]!);
  if (!servers.length) throw new Error(`upstream toko_${module} has no server line`);
  const parameters = servers[0]![2]!;
  const rewritten = `${found[1]}${withServers(
    found[2]!,
    addresses.map((a) => `server ${a}${parameters};`),
  )}`;
  return rerouteAny(conf.replace(line, rewritten), conf, module, addresses);
}

/** `reroute`'s configuration alone. */
export const rerouteUpstream = (conf: string, module: ModuleName, addresses: string[]): string =>
  reroute(conf, module, addresses).conf;

/**
 * `toko_any` with the module's entries replaced by `addresses`, when it lists exactly every module's servers
 * (addresses, in module order) as they were before; any other layout (a hand-edited file, a Kubernetes render
 * that lists a Service once per try) is left alone rather than guessed at.
 */
function rerouteAny(
  conf: string,
  before: string,
  module: ModuleName,
  addresses: string[],
): { conf: string; readiness: boolean } {
  const line = upstreamLine('toko_any');
  const any = line.exec(conf);
  const shares = MODULE_NAMES.map((m) => {
    const own = upstreamLine(`toko_${m}`).exec(before);
    return own ? serverEntries(own[2]!).map((e) => e[1]!) : undefined;
  });
  const entries = any ? serverEntries(any[2]!) : [];
  const expected = shares.flatMap((share) => share ?? []);
  const laidOut =
    any !== null &&
    shares.every((share) => share !== undefined) &&
    entries.length === expected.length &&
    entries.every((e, i) => e[1] === expected[i]);
  if (!laidOut) return { conf, readiness: false };
  const at = MODULE_NAMES.indexOf(module);
  const start = shares.slice(0, at).reduce((sum, share) => sum + share!.length, 0);
  const parameters = entries[start]![2]!;
  const servers = entries.map((e) => e[0]);
  servers.splice(start, shares[at]!.length, ...addresses.map((a) => `server ${a}${parameters};`));
  return { conf: conf.replace(line, `${any![1]}${withServers(any![2]!, servers)}`), readiness: true };
}

/** The master's pid, from the configuration's `pid` directive. */
function masterPid(conf: string, confFile: string): number {
  const file = /^\s*pid\s+([^;]+);/m.exec(conf)?.[1];
  if (!file) throw new Error(`${confFile} names no pid file: cannot tell which nginx to reload`);
  const pid = Number(readFileSync(path.resolve(path.dirname(confFile), file), 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`${file} holds no pid`);
  return pid;
}

/**
 * `npm run route -- <module> --to <addr:port,...> [--conf <file>]`: points
 * the module's upstream in the running gateway's configuration at the
 * given replicas, checks the file with `nginx -t`, and reloads the gateway
 * (SIGHUP): new workers take the new routes, old ones finish their requests.
 * A file nginx rejects is put back as it was and nothing is reloaded.
 */
export async function route(opts: {
  module: string;
  to?: string;
  conf: string;
}): Promise<{ pid: number; servers: string[]; readinessMoved: boolean }> {
  const module = checkModule(opts.module);
  const addresses = parseAddresses(opts.to);
  let before: string;
  try {
    before = readFileSync(opts.conf, 'utf8');
  } catch {
    throw new Error(`cannot read the gateway configuration ${opts.conf} (--conf names it)`);
  }
  const { conf: after, readiness } = reroute(before, module, addresses);
  const pid = masterPid(before, opts.conf);
  writeFileSync(opts.conf, after);
  try {
    await run('nginx', ['-t', '-q', '-c', path.resolve(opts.conf), '-p', path.dirname(path.resolve(opts.conf))]);
  } catch (err) {
    writeFileSync(opts.conf, before);
    const detail = (err as { stderr?: string }).stderr?.trim() || (err as Error).message;
    throw new Error(`nginx rejected the new configuration (left as it was): ${detail}`);
  }
  process.kill(pid, 'SIGHUP');
  return { pid, servers: addresses, readinessMoved: readiness };
}
