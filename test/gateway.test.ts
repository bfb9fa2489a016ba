import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newUser } from './helpers/http.ts';
import { startSplitRig, type SplitRig } from './helpers/split.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The nginx gateway of the split topology: its own answers carry the
 * security headers the services send (item 12), and the services believe
 * X-Forwarded-For from the gateway only (item 8).
 */
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canSplit = has('nginx') && has('redis-server');
if (!canSplit) console.warn('gateway tests skipped: nginx and redis-server are needed (.ci/run installs them)');

/** The security headers every JSON answer of a service carries (helmet's, with `default-src 'none'`). */
const SECURITY_HEADERS = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request over node:http: any method, the raw headers as received (repeated ones stay an array), from `localAddress`. */
function send(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; localAddress?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, localAddress: opts.localAddress },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headersDistinct, body }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The header values of `names` in an answer, each exactly as often as it was sent. */
const headersOf = (a: Answer, names: string[]) => Object.fromEntries(names.map((n) => [n, a.headers[n]]));

describe.skipIf(!canSplit)('the gateway', () => {
  let rig: SplitRig;
  let expected: Record<string, unknown>;
  beforeAll(async () => {
    rig = await startSplitRig({
      LOGIN_MAX_FAILURES_PER_CLIENT: '3',
      LOGIN_MAX_FAILURES: '100',
      LOG_LEVEL: 'warn',
    });
    // What a service itself sends with a JSON answer.
    const own = await send(`${rig.topology.serviceUrl('product')}/health`);
    expected = headersOf(own, SECURITY_HEADERS);
    for (const name of SECURITY_HEADERS) expect(own.headers[name], `a service sends ${name}`).toHaveLength(1);
    expect(own.headers['content-security-policy']).toEqual(["default-src 'none';frame-ancestors 'none'"]);
  }, 180_000);
  afterAll(() => rig?.close(), 60_000);

  const gateway = (p: string) => `${rig.url}${p}`;

  describe('answers of its own', () => {
    it.each([
      ['its liveness', 200, () => send(gateway('/health'))],
      ['an unknown path (404)', 404, () => send(gateway('/no-such-thing'))],
      ['an internal path (404)', 404, () => send(gateway('/internal/v1/user/get'))],
      ['a method nobody serves (405)', 405, () => send(gateway('/api/v1/products'), { method: 'PROPFIND' })],
      [
        'a body over its limit (413)',
        413,
        () =>
          send(gateway('/api/v1/users/register'), {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: `{"x":"${'a'.repeat(1_100_000)}"}`,
          }),
      ],
    ])('carry the headers a service sends: %s', async (_what, status, answer) => {
      const res = await answer();
      expect(res.status).toBe(status);
      expect(headersOf(res, SECURITY_HEADERS)).toEqual(expected);
    });

    it('carry them on a request nginx cannot read (400)', async () => {
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(new URL(rig.url).port), '127.0.0.1', () =>
          socket.write('GET /api/v1/products\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        );
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(raw).toMatch(/^HTTP\/1\.1 400 /);
      const lines = raw.split('\r\n\r\n')[0]!.split('\r\n').slice(1);
      for (const name of SECURITY_HEADERS) {
        const values = lines
          .filter((l) => l.toLowerCase().startsWith(`${name}:`))
          .map((l) => l.slice(name.length + 1).trim());
        expect(values, name).toEqual(expected[name]);
      }
    });
  });

  describe('answers it passes on', () => {
    it('carry each header once, as the service sent it', async () => {
      for (const p of ['/api/v1/products', '/health/ready', '/health/product', '/openapi.json']) {
        const res = await send(gateway(p));
        expect(res.status, p).toBe(200);
        expect(headersOf(res, SECURITY_HEADERS), p).toEqual(expected);
      }
      // The docs page keeps its own policy (this origin's scripts), not the JSON one.
      const docs = await send(gateway('/docs'));
      expect(docs.headers['content-security-policy']).toHaveLength(1);
      expect(docs.headers['content-security-policy']![0]).toMatch(/script-src 'self'/);
    });
  });

  describe('and the client address', () => {
    /** A login with a wrong password: 401 until the client's address is throttled, then 429. */
    const wrongLogin = (url: string, localAddress: string, forwardedFor?: string) =>
      send(`${url}/api/v1/users/login`, {
        method: 'POST',
        localAddress,
        headers: {
          'content-type': 'application/json',
          ...(forwardedFor ? { 'x-forwarded-for': forwardedFor } : {}),
        },
        body: JSON.stringify({ email: newUser().email, password: 'not-the-password' }),
      }).then((r) => r.status);

    it('is what the gateway saw, whatever X-Forwarded-For a client sends it', async () => {
      // 127.0.0.3 plays a client of the gateway; its own X-Forwarded-For is replaced there.
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push(await wrongLogin(rig.url, '127.0.0.3', `203.0.113.${i}`));
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // Another client of the gateway is another address to the service.
      expect(await wrongLogin(rig.url, '127.0.0.4')).toBe(401);
    });

    it('is the socket address of a client that reaches a service directly, whatever X-Forwarded-For it writes', async () => {
      const user = rig.topology.serviceUrl('user');
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push(await wrongLogin(user, '127.0.0.2', `198.51.100.${i}`));
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
    });
  });

  // Last: it stops a service.
  it("carries the headers on its 503 when a service does not answer, and once the service is back, on the service's answer", async () => {
    await rig.topology.stop('product');
    const down = await send(gateway('/api/v1/products'));
    expect(down.status).toBe(503);
    expect(down.headers['retry-after']).toEqual(['5']);
    expect(headersOf(down, SECURITY_HEADERS)).toEqual(expected);
    await rig.topology.start('product');
    const back = await waitFor('the product service behind the gateway', async () => {
      const res = await send(gateway('/api/v1/products'));
      return res.status === 200 ? res : undefined;
    });
    expect(headersOf(back, SECURITY_HEADERS)).toEqual(expected);
  }, 90_000);
});
