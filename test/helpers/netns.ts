import { execFileSync, spawnSync } from 'node:child_process';

/**
 * Hosts of the test's own on this machine: each is a Linux network namespace
 * joined to this one by a veth pair on a /30 of 10.231.0.0/16, so a replica
 * in it has its own address, its own loopback, and a link the test can take
 * down. Nothing here reaches any address but those pairs (and loopback). Needs
 * root and iproute2; `available()` says whether this machine can.
 */
export interface Host {
  /** The namespace's name (`toko-<tag>-<n>`). */
  name: string;
  /** The host's address, seen from this namespace. */
  address: string;
  /** This namespace's address on the pair, seen from the host (where the host reaches its databases). */
  gateway: string;
}

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });

export function netnsAvailable(): boolean {
  if (process.getuid?.() !== 0) return false;
  const probe = `toko-probe-${process.pid}`;
  const added = spawnSync('ip', ['netns', 'add', probe]).status === 0;
  if (added) spawnSync('ip', ['netns', 'del', probe]);
  return added;
}

export class Hosts {
  readonly hosts: Host[] = [];

  /** `tag` keeps two suites' namespaces apart; `block` (0-255) picks their addresses. */
  constructor(
    private readonly tag: string,
    private readonly block: number,
  ) {}

  /** Removes what a killed earlier run of this suite left behind. */
  static sweep(tag: string): void {
    const listed = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
    for (const line of listed.split('\n')) {
      const name = line.split(' ')[0];
      if (name?.startsWith(`toko-${tag}-`)) spawnSync('ip', ['netns', 'del', name]);
    }
    const links = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).stdout ?? '';
    for (const m of links.matchAll(new RegExp(`\\d+: (tk${tag}\\d+h)[@:]`, 'g')))
      spawnSync('ip', ['link', 'del', m[1]!]);
  }

  /**
   * An unreachable route under the hosts' /30s: while a host's link is down its own route is gone, and without
   * this its address would be sent on by the default route, off this machine.
   */
  private fence(): void {
    if (this.hosts.length === 0) ip('route', 'replace', 'unreachable', `10.231.${this.block}.0/24`, 'metric', '4000');
  }

  add(): Host {
    this.fence();
    const n = this.hosts.length + 1;
    if (n > 60) throw new Error('at most 60 hosts');
    const name = `toko-${this.tag}-${n}`;
    const outside = `tk${this.tag}${n}h`;
    const inside = `tk${this.tag}${n}n`;
    const base = n * 4;
    const gateway = `10.231.${this.block}.${base + 1}`;
    const address = `10.231.${this.block}.${base + 2}`;
    ip('netns', 'add', name);
    ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
    ip('link', 'set', inside, 'netns', name);
    ip('addr', 'add', `${gateway}/30`, 'dev', outside);
    ip('link', 'set', outside, 'up');
    ip('-n', name, 'addr', 'add', `${address}/30`, 'dev', inside);
    ip('-n', name, 'link', 'set', inside, 'up');
    ip('-n', name, 'link', 'set', 'lo', 'up');
    const host = { name, address, gateway };
    this.hosts.push(host);
    return host;
  }

  /** The command line that runs `argv` on `host`. */
  exec(host: Host, argv: string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', host.name, ...argv]];
  }

  /** Takes the host's link down (a pulled cable: packets are dropped, nobody is told), or up again. */
  link(host: Host, up: boolean): void {
    const n = this.hosts.indexOf(host) + 1;
    ip('link', 'set', `tk${this.tag}${n}h`, up ? 'up' : 'down');
  }

  close(): void {
    for (const [i, host] of this.hosts.entries()) {
      spawnSync('ip', ['link', 'del', `tk${this.tag}${i + 1}h`]);
      spawnSync('ip', ['netns', 'del', host.name]);
    }
    if (this.hosts.length)
      spawnSync('ip', ['route', 'del', 'unreachable', `10.231.${this.block}.0/24`, 'metric', '4000']);
    this.hosts.length = 0;
  }
}
