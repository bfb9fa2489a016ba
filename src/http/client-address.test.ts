import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { call, newUser } from '../../test/helpers/http.ts';
import { loadConfig } from '../config.ts';
import { clientAddress, proxyList } from './client-address.ts';

describe('clientAddress', () => {
  const trusted = proxyList(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1']);

  it("is the socket's peer when that is not a listed proxy, whatever X-Forwarded-For says", () => {
    expect(clientAddress('198.51.100.1', '203.0.113.9', trusted)).toBe('198.51.100.1');
    expect(clientAddress('2001:db8::1', '203.0.113.9', trusted)).toBe('2001:db8::1');
    expect(clientAddress('::ffff:198.51.100.1', '203.0.113.9', trusted)).toBe('198.51.100.1');
  });

  it('is what a listed proxy wrote last, IPv4 or IPv6, by address or by range, never what the client wrote before it', () => {
    expect(clientAddress('192.0.2.7', '203.0.113.9', trusted)).toBe('203.0.113.9');
    expect(clientAddress('10.1.2.3', '1.1.1.1, 203.0.113.9', trusted)).toBe('203.0.113.9');
    expect(clientAddress('::ffff:10.1.2.3', '2001:db8::5', trusted)).toBe('2001:db8::5');
    expect(clientAddress('fd12::1', '203.0.113.9', trusted)).toBe('203.0.113.9');
    expect(clientAddress('::1', '[2001:db8::5]:4711', trusted)).toBe('2001:db8::5');
    expect(clientAddress('::1', '203.0.113.9:4711', trusted)).toBe('203.0.113.9');
  });

  it('walks past every listed proxy of a chain, and stops at the first address that is not one', () => {
    expect(clientAddress('10.0.0.1', '1.1.1.1, 203.0.113.9, 10.0.0.2, fd00::3', trusted)).toBe('203.0.113.9');
    // All of them proxies: the leftmost is as far as anyone can tell.
    expect(clientAddress('10.0.0.1', '10.0.0.9, 10.0.0.2', trusted)).toBe('10.0.0.9');
  });

  it('stops at the proxy that passed on something that is not an address', () => {
    expect(clientAddress('10.0.0.1', 'unknown', trusted)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '203.0.113.9, 10.0.0.2, <script>', trusted)).toBe('10.0.0.1');
    expect(clientAddress('10.0.0.1', '203.0.113.9, ', trusted)).toBe('10.0.0.1');
  });
});

describe('TRUSTED_PROXIES', () => {
  const settingOf = (env: Record<string, string>) => {
    try {
      return loadConfig(env).trustedProxies;
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('takes addresses and CIDR ranges, IPv4 and IPv6, and refuses anything else', () => {
    expect(settingOf({})).toEqual([]);
    expect(settingOf({ TRUSTED_PROXIES: ' 10.0.0.0/8, 192.0.2.7 ,fd00::/8,::1' })).toEqual([
      '10.0.0.0/8',
      '192.0.2.7',
      'fd00::/8',
      '::1',
    ]);
    for (const bad of ['10.0.0.0/33', 'fd00::/129', 'gateway', '10.0.0.0/8/1', '10.0.0.300', '*', '10.0.0.0/'])
      expect(settingOf({ TRUSTED_PROXIES: bad }), bad).toMatch(/^invalid configuration: TRUSTED_PROXIES: expected/);
  });

  it('replaces TRUST_PROXY and TRUSTED_PROXY_HOPS: alone they stop start-up naming it, beside it they change nothing', () => {
    const alone: Record<string, string>[] = [
      { TRUST_PROXY: 'true' },
      { TRUST_PROXY: '1', TRUSTED_PROXY_HOPS: '1' },
      { TRUSTED_PROXY_HOPS: '2' },
    ];
    for (const old of alone)
      expect(settingOf(old), JSON.stringify(old)).toMatch(
        /^invalid configuration: TRUST(ED)?_PROXY(_HOPS)?: replaced by TRUSTED_PROXIES/,
      );
    expect(settingOf({ TRUST_PROXY: 'false' })).toEqual([]);
    expect(settingOf({ TRUST_PROXY: 'true', TRUSTED_PROXY_HOPS: '3', TRUSTED_PROXIES: '10.0.0.1' })).toEqual([
      '10.0.0.1',
    ]);
    expect(settingOf({ TRUST_PROXY: 'yes', TRUSTED_PROXIES: '10.0.0.1' })).toMatch(
      /TRUST_PROXY: expected true or false/,
    );
  });
});

/** A login with a wrong password, sent from `localAddress` (another loopback address plays another machine). */
function wrongLoginFrom(url: string, localAddress: string, forwardedFor?: string): Promise<number> {
  const body = JSON.stringify({ email: newUser().email, password: 'not-the-password' });
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}/api/v1/users/login`,
      {
        method: 'POST',
        localAddress,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const THROTTLE = {
  LOGIN_MAX_FAILURES_PER_CLIENT: '3',
  LOGIN_MAX_FAILURES: '100',
  REGISTER_MAX_CONFLICTS_PER_CLIENT: '3',
  REGISTER_MAX_PER_CLIENT: '10',
};

/**
 * Behind a proxy listed in TRUSTED_PROXIES (here the test client itself, on
 * 127.0.0.1) the client address is the one that proxy appended, the
 * rightmost entry of X-Forwarded-For: whatever a client writes to its left
 * is its own invention.
 */
describe('the client address behind a trusted proxy', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ TRUSTED_PROXIES: '127.0.0.1', ...THROTTLE });
  });
  afterAll(() => app?.close());

  const wrongLogin = (forwardedFor: string) =>
    call(app.url, 'POST', '/api/v1/users/login', {
      body: { email: newUser().email, password: 'not-the-password' },
      headers: { 'x-forwarded-for': forwardedFor },
    });

  it('cannot be dodged by inventing a new address at each guess', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await wrongLogin(`203.0.113.${i}, 198.51.100.7`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });

  it('cannot lock out a victim by writing their address', async () => {
    for (let i = 0; i < 4; i++) await wrongLogin('192.0.2.50, 198.51.100.8');
    // The victim's own requests arrive through the proxy as 192.0.2.50 and are not throttled.
    expect((await wrongLogin('192.0.2.50')).status).toBe(401);
  });

  it('throttles finding out who has an account through registration, per address, never counting sign-ups that succeed', async () => {
    const register = (body: object, address: string) =>
      call(app.url, 'POST', '/api/v1/users/register', { body, headers: { 'x-forwarded-for': address } });
    const taken = newUser();
    expect((await register(taken, '198.51.100.20')).status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await register(newUser(), '198.51.100.21')).status).toBe(201);
    const probes = [];
    for (let i = 0; i < 5; i++)
      probes.push((await register({ ...newUser(), email: taken.email }, '198.51.100.21')).status);
    expect(probes).toEqual([409, 409, 409, 429, 429]);
    expect((await register({ ...newUser(), email: taken.email }, '198.51.100.22')).status).toBe(409);
  });

  it('takes at most REGISTER_MAX_PER_CLIENT sign-ups from one address, even all at once, and leaves other addresses alone', async () => {
    const register = (address: string) =>
      call(app.url, 'POST', '/api/v1/users/register', { body: newUser(), headers: { 'x-forwarded-for': address } });
    const burst = await Promise.all(Array.from({ length: 14 }, () => register('198.51.100.30')));
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(10).fill(201), ...Array(4).fill(429)]);
    expect(Number(burst.find((r) => r.status === 429)!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await register('198.51.100.31')).status).toBe(201);
  });

  it('is the socket address of a client that reaches the process directly, whatever X-Forwarded-For it writes', async () => {
    // 127.0.0.2 is not a listed proxy: its own X-Forwarded-For, new at each guess, changes nothing.
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(await wrongLoginFrom(app.url, '127.0.0.2', `203.0.113.${100 + i}`));
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    // ... and it was counted as 127.0.0.2, nobody else: the proxy's other clients still get in.
    expect(await wrongLoginFrom(app.url, '127.0.0.1', '198.51.100.9')).toBe(401);
  });
});

describe('the client address with no trusted proxy (the default)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp(THROTTLE);
  });
  afterAll(() => app?.close());

  it('never reads X-Forwarded-For', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push(await wrongLoginFrom(app.url, '127.0.0.1', `203.0.113.${i}`));
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });
});
