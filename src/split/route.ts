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

/**
 * The gateway configuration with the module's upstream (`upstream toko_<m>
 * { ... }`, one line, as the template renders it) serving `addresses`: each
 * gets the parameters its first server had (max_fails, fail_timeout); the
 * zone, keepalive and every other upstream stay as they were. The module's
 * routes, and an internal balancer of the module, follow their upstream.
 */
export function rerouteUpstream(conf: string, module: ModuleName, addresses: string[]): string {
  const line = new RegExp(`^(\\s*upstream toko_${module} \\{)(.*)\\}\\s*$`, 'm');
  const found = line.exec(conf);
  if (!found)
    throw new Error(`the gateway configuration has no upstream toko_${module}: is it toko's rendered gateway?`);
  const body = found[2]!;
  const servers = [...body.matchAll(/server ([^\s;]+)([^;]*);/g)];
  if (!servers.length) throw new Error(`upstream toko_${module} has no server line`);
  const parameters = servers[0]![2]!;
  const rest = body.replace(/\s*server [^;]*;/g, '');
  const zone = /^\s*zone [^;]*;/.exec(rest)?.[0] ?? '';
  const after = rest.slice(zone.length).trimEnd();
  const rewritten = `${found[1]}${zone} ${addresses.map((a) => `server ${a}${parameters};`).join(' ')}${after} }`;
  return conf.replace(line, rewritten);
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
}): Promise<{ pid: number; servers: string[] }> {
  const module = checkModule(opts.module);
  const addresses = parseAddresses(opts.to);
  let before: string;
  try {
    before = readFileSync(opts.conf, 'utf8');
  } catch {
    throw new Error(`cannot read the gateway configuration ${opts.conf} (--conf names it)`);
  }
  const after = rerouteUpstream(before, module, addresses);
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
  return { pid, servers: addresses };
}
