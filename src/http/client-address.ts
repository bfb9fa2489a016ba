import { BlockList, isIP } from 'node:net';
import type { Middleware } from 'koa';

/** `10.0.0.5`, `10.0.0.0/8`, `fd00::/8`, `::1`: an address or a CIDR range, IPv4 or IPv6. */
export function isAddressOrRange(entry: string): boolean {
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** `::ffff:10.0.0.5` is 10.0.0.5 (a dual-stack socket's IPv4 peer), so each client has one address. */
function plain(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** An address as a proxy may write it in X-Forwarded-For (`10.0.0.5`, `10.0.0.5:4711`, `[fd00::1]:4711`), or undefined. */
function forwardedAddress(entry: string): string | undefined {
  const bare = /^\[([^\]]+)\](?::\d+)?$/.exec(entry)?.[1] ?? /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(entry)?.[1] ?? entry;
  return isIP(bare) ? plain(bare) : undefined;
}

/** The proxies whose X-Forwarded-For is believed: addresses and CIDR ranges, checked with node's BlockList. */
export function proxyList(entries: readonly string[]): (address: string) => boolean {
  const list = new BlockList();
  for (const entry of entries) {
    if (!isAddressOrRange(entry)) throw new Error(`${entry} is not an IP address or CIDR range`);
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefix), type);
  }
  return (address) => {
    const family = isIP(address);
    return family !== 0 && list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  };
}

/**
 * Who sent a request: the socket's peer, unless that peer is a trusted proxy;
 * then the address it wrote last in X-Forwarded-For, and so on leftwards while
 * the address found is a trusted proxy too. What stands to the left of the
 * first address that is not a proxy was written by the client and is never
 * read; an entry that is not an address ends the walk at the proxy that
 * passed it on.
 */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: (a: string) => boolean): string {
  let address = plain(peer);
  if (!forwardedFor) return address;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0 && trusted(address); i--) {
    const next = forwardedAddress(hops[i]!.trim());
    if (next === undefined) break;
    address = next;
  }
  return address;
}

/**
 * Sets `ctx.ip` to the client's address (clientAddress): X-Forwarded-For is
 * read only when the socket's peer is one of `trustedProxies`. With none, the
 * socket's address stands and the header is never read.
 */
export function clientAddresses(opts: { trustedProxies: readonly string[] }): Middleware {
  const trusted = proxyList(opts.trustedProxies);
  const none = opts.trustedProxies.length === 0;
  return function clientAddresses(ctx, next) {
    const peer = ctx.req.socket.remoteAddress ?? '';
    ctx.request.ip = none ? plain(peer) : clientAddress(peer, ctx.get('X-Forwarded-For') || undefined, trusted);
    return next();
  };
}
