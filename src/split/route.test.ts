import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePorts } from '../../test/helpers/wait.ts';
import { MODULE_NAMES, type ModuleName } from '../config.ts';
import { renderGatewayConfig } from './topology.ts';
import { parseAddresses, reroute, rerouteUpstream, route } from './route.ts';

/**
 * `npm run route` on a real nginx: the product routes move from one backend
 * to another by a reload while the other modules' routes stay; a
 * configuration nginx rejects is put back and nothing is reloaded.
 */
const hasNginx = spawnSync('sh', ['-c', 'command -v nginx']).status === 0;
if (!hasNginx && !process.env.CI) console.warn('route tests skipped: nginx is not installed');

const dir = mkdtempSync(path.join(tmpdir(), 'toko-route-'));
const conf = path.join(dir, 'gateway', 'nginx.conf');
let nginx: ChildProcess | undefined;
const servers: http.Server[] = [];
let gatewayPort = 0;

/** A backend that answers every request with its own name. */
async function backend(name: string): Promise<number> {
  const s = http.createServer((_req, res) => res.end(name));
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  servers.push(s);
  return (s.address() as AddressInfo).port;
}

const get = async (p: string) => (await fetch(`http://127.0.0.1:${gatewayPort}${p}`)).text();

/**
 * What a path answers once the reload took effect (bounded: nginx reloads in
 * the background, and until the old workers have their signal to quit they
 * still accept connections): the same answer five times in a row.
 */
async function answerBecomes(p: string, want: string): Promise<string> {
  const deadline = Date.now() + 20_000;
  let got = '';
  for (let inRow = 0; inRow < 5 && Date.now() < deadline;) {
    got = await get(p).catch(() => '');
    inRow = got === want ? inRow + 1 : 0;
    await new Promise((r) => setTimeout(r, 100));
  }
  return got;
}

let other = 0;
beforeAll(async () => {
  if (!hasNginx) return;
  const [old, moved] = [await backend('monolith'), await backend('product-service')];
  other = moved;
  gatewayPort = (await freePorts(1))[0]!;
  const ports = Object.fromEntries(MODULE_NAMES.map((m) => [m, old])) as Record<ModuleName, number>;
  mkdirSync(path.dirname(conf), { recursive: true });
  writeFileSync(conf, renderGatewayConfig({ dataDir: dir, gatewayPort, ports }));
  nginx = spawn('nginx', ['-c', conf, '-p', path.dirname(conf)], { stdio: 'ignore' });
  expect(await answerBecomes('/api/v1/products', 'monolith')).toBe('monolith');
}, 30_000);

afterAll(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = once(nginx, 'exit');
    nginx.kill('SIGTERM');
    await exited;
  }
  for (const s of servers) s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('route input', () => {
  it('refuses what is not a list of host:port, and an unknown module', async () => {
    expect(() => parseAddresses('127.0.0.1')).toThrow(/not an address/);
    expect(() => parseAddresses('a:0')).toThrow(/not an address/);
    expect(parseAddresses('127.0.0.1:1,[::1]:2')).toEqual(['127.0.0.1:1', '[::1]:2']);
    await expect(route({ module: 'nope', to: '127.0.0.1:1', conf })).rejects.toThrow(/unknown module "nope"/);
  });

  it("rewrites only the module's servers, keeping their parameters", () => {
    const c = 'upstream toko_product { zone toko_product 64k; server 127.0.0.1:1 max_fails=2; keepalive 16; }';
    expect(rerouteUpstream(c, 'product', ['h:2', 'h:3'])).toBe(
      'upstream toko_product { zone toko_product 64k; server h:2 max_fails=2; server h:3 max_fails=2; keepalive 16; }',
    );
    expect(() => rerouteUpstream(c, 'user', ['h:2'])).toThrow(/no upstream toko_user/);
  });

  it("moves the module's share of the readiness upstream too, wherever its replicas sit in it", () => {
    // Two replicas of user and of product, one of order and notification, as `npm run split -- --replicas user=2,product=2` renders them.
    const rendered = renderGatewayConfig({
      dataDir: '/tmp/toko-route-render',
      gatewayPort: 1,
      ports: { user: [11, 12], product: [21, 22], order: 31, notification: 41 },
    });
    const any = (c: string) => /upstream toko_any \{[^}]*\}/.exec(c)![0];
    const servers = (c: string) => [...any(c).matchAll(/server ([^\s;]+)/g)].map((m) => m[1]);
    expect(servers(rendered)).toEqual([
      '127.0.0.1:11',
      '127.0.0.1:12',
      '127.0.0.1:21',
      '127.0.0.1:22',
      '127.0.0.1:31',
      '127.0.0.1:41',
    ]);
    const moved = rerouteUpstream(rendered, 'product', ['10.0.0.5:3000', '10.0.0.6:3000', '10.0.0.7:3000']);
    expect(servers(moved)).toEqual([
      '127.0.0.1:11',
      '127.0.0.1:12',
      '10.0.0.5:3000',
      '10.0.0.6:3000',
      '10.0.0.7:3000',
      '127.0.0.1:31',
      '127.0.0.1:41',
    ]);
    // Its zone and keep-alive stay; so does every other upstream.
    expect(any(moved)).toMatch(/^upstream toko_any \{ zone toko_any 64k; server /);
    expect(any(moved)).toMatch(/keepalive 4; keepalive_timeout 4s; \}$/);
    expect(moved.replace(any(moved), '').replace(/upstream toko_product \{[^}]*\}/, '')).toBe(
      rendered.replace(any(rendered), '').replace(/upstream toko_product \{[^}]*\}/, ''),
    );
    // A file whose toko_any no longer lists each module's servers (its upstreams edited by hand) is left alone,
    // even when the counts add up: user 2 + product 1 + 1 + 1 = the 5 entries [11, 21, 22, 31, 41].
    const base = renderGatewayConfig({
      dataDir: '/tmp/toko-route-render',
      gatewayPort: 1,
      ports: { user: 11, product: [21, 22], order: 31, notification: 41 },
    });
    const handEdited = base
      .replace(/(upstream toko_user \{[^}\n]*?server 127\.0\.0\.1:11[^;]*;)/, '$1 server 127.0.0.1:12 max_fails=2;')
      .replace(/(upstream toko_product \{[^}\n]*?)server 127\.0\.0\.1:22[^;]*;/, '$1');
    expect(servers(handEdited)).toEqual([
      '127.0.0.1:11',
      '127.0.0.1:21',
      '127.0.0.1:22',
      '127.0.0.1:31',
      '127.0.0.1:41',
    ]);
    const refused = reroute(handEdited, 'user', ['10.0.0.9:1']);
    expect(refused.readiness).toBe(false);
    expect(any(refused.conf)).toBe(any(handEdited));
    expect(refused.conf).toMatch(/upstream toko_user \{ zone toko_user 64k; server 10\.0\.0\.9:1 /);
    expect(reroute(base, 'user', ['10.0.0.9:1']).readiness).toBe(true);
    // Then back to one replica: the order of the other modules' entries is kept.
    expect(servers(rerouteUpstream(moved, 'product', ['127.0.0.1:21']))).toEqual([
      '127.0.0.1:11',
      '127.0.0.1:12',
      '127.0.0.1:21',
      '127.0.0.1:31',
      '127.0.0.1:41',
    ]);
  });
});

describe.skipIf(!hasNginx)('npm run route on a running gateway', () => {
  it("moves the module's routes by a reload and leaves the others", async () => {
    // Through the command line `npm run route` runs (src/split/route.command.ts, here from source).
    const cli = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'src/split/route.command.ts', 'product', '--to', `127.0.0.1:${other}`, '--conf', conf],
      { encoding: 'utf8', timeout: 30_000 },
    );
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ module: 'product', reloaded: true, readinessMoved: true });
    expect(cli.stderr).toBe('');
    expect(await answerBecomes('/api/v1/products', 'product-service')).toBe('product-service');
    expect(await get('/api/v1/users/me')).toBe('monolith');
  }, 30_000);

  it('puts back a configuration nginx rejects and does not reload', async () => {
    const before = readFileSync(conf, 'utf8');
    await expect(route({ module: 'product', to: 'no-such-host.invalid:80', conf })).rejects.toThrow(/nginx rejected/);
    expect(readFileSync(conf, 'utf8')).toBe(before);
    expect(await get('/api/v1/products')).toBe('product-service');
  }, 30_000);
});
