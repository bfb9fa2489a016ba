import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULE_NAMES, type ModuleName } from '../src/registry.ts';
import { keyedWrites, UPSTREAM_KEEPALIVE } from '../scripts/generate/nginx.ts';
import { renderGatewayConfig } from '../src/split/topology.ts';
import { newUser } from './helpers/http.ts';
import { startSplitRig, type SplitRig } from './helpers/split.ts';
import { freePorts, waitFor } from './helpers/wait.ts';

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

/**
 * The gateway built from the repo's template in front of two toy replicas of every module, on loopback; `stop`
 * ends nginx and the replicas and removes its files.
 */
async function gatewayInFront(
  name: string,
  replicas: [Server, Server],
): Promise<{ url: string; stop: () => Promise<void> }> {
  const dir = mkdtempSync(path.join(tmpdir(), `toko-gateway-${name}-`));
  const ports = (await freePorts(3)) as [number, number, number];
  for (const [i, server] of replicas.entries())
    await new Promise<void>((resolve) => server.listen(ports[i], '127.0.0.1', resolve));
  const gw = path.join(dir, 'gateway');
  for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(gw, sub), { recursive: true });
  writeFileSync(
    path.join(gw, 'nginx.conf'),
    renderGatewayConfig({
      dataDir: dir,
      gatewayPort: ports[2],
      ports: Object.fromEntries(MODULE_NAMES.map((m) => [m, [ports[0], ports[1]]])) as Record<ModuleName, number[]>,
    }),
  );
  const nginx = spawn('nginx', ['-c', path.join(gw, 'nginx.conf'), '-p', gw], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${ports[2]}`;
  await waitFor('the gateway', async () => (await send(`${url}/health`).catch(() => undefined))?.status, 15_000, 50);
  return {
    url,
    stop: async () => {
      if (nginx.exitCode === null && nginx.signalCode === null) {
        const exited = once(nginx, 'exit');
        nginx.kill('SIGTERM');
        await exited;
      }
      for (const s of replicas) s.closeAllConnections();
      await Promise.all(replicas.map((s) => new Promise((resolve) => s.close(resolve))));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The gateway built from the repo's template in front of two replicas of
 * every module: one slow (it answers after 3 s), one fast. A GET is asked of
 * the next replica when one does not answer within the gateway's short read
 * timeout; a POST is sent once, to one replica, and waited for.
 */
describe.skipIf(!has('nginx'))('the gateway in front of a slow replica and a fast one', () => {
  const SLOW_MS = 3000;
  /** What reached each replica: method and URL, exactly as received. */
  const hits: Record<'slow' | 'fast', string[]> = { slow: [], fast: [] };
  let gateway: Awaited<ReturnType<typeof gatewayInFront>> | undefined;
  let url: string;

  /** A replica that answers with its name; the slow one (and every one, for paths with `everywhere-slow` and POSTs) after a delay. */
  const replica = (name: 'slow' | 'fast') =>
    createServer((req, res) => {
      hits[name].push(`${req.method} ${req.url}`);
      req.resume();
      const slow = name === 'slow' || req.url!.includes('everywhere-slow');
      const delay = req.method === 'POST' ? 1500 : slow ? SLOW_MS : 0;
      setTimeout(() => {
        if (!res.destroyed) res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
      }, delay);
    });

  beforeAll(async () => {
    gateway = await gatewayInFront('slow', [replica('slow'), replica('fast')]);
    url = gateway.url;
  }, 30_000);
  afterAll(() => gateway?.stop());

  it('answers each GET from the fast replica, the path and query exactly as the client sent them', async () => {
    // Round robin sends some of them to the slow replica first; those are asked of the fast one after the timeout.
    const paths = [0, 1, 2, 3].map((i) => `/api/v1/products/a%2Fb%20${i}?limit=5&q=%C3%A9t%C3%A9&x=1+2`);
    for (const p of paths) {
      const res = await send(`${url}${p}`);
      expect(res.status, p).toBe(200);
      expect(res.body, p).toBe('fast');
    }
    expect(hits.fast).toEqual(paths.map((p) => `GET ${p}`));
    expect(hits.slow.length).toBeGreaterThan(0);
    for (const h of hits.slow) expect(paths.map((p) => `GET ${p}`)).toContain(h);
  }, 30_000);

  it('sends a POST that is slower than a GET may be to one replica, once, and waits for its answer', async () => {
    hits.slow.length = 0;
    hits.fast.length = 0;
    const res = await send(`${url}/api/v1/orders?x=%2F`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect([...hits.slow, ...hits.fast]).toEqual(['POST /api/v1/orders?x=%2F']);
  }, 30_000);

  it('answers a GET no replica answers in time with its own 503, having asked each replica once', async () => {
    hits.slow.length = 0;
    hits.fast.length = 0;
    const res = await send(`${url}/api/v1/products/everywhere-slow`);
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'SERVICE.UNAVAILABLE' });
    expect(hits.fast).toEqual(['GET /api/v1/products/everywhere-slow']);
    expect(hits.slow.length).toBeLessThanOrEqual(1);
  }, 30_000);

  it('keeps the internal read locations unreachable from outside', async () => {
    hits.slow.length = 0;
    hits.fast.length = 0;
    for (const p of ['/__toko_read/product', '/__toko_read/product?x=1', '/__toko_read/user']) {
      const res = await send(`${url}${p}`);
      expect(res.status, p).toBe(404);
      expect(JSON.parse(res.body), p).toMatchObject({ code: 'HTTP.NOT_FOUND' });
    }
    expect([...hits.slow, ...hits.fast]).toEqual([]);
  });
});

/**
 * The gateway in front of a replica that resets every POST after reading it
 * (as a replica killed mid-request does, or one whose closing listener resets
 * a connection it had not accepted yet) and one that answers. A POST with an
 * Idempotency-Key to a route that honours the key (an order) goes on to the
 * other replica, where the key makes it one order; any other POST is sent to
 * one replica only, and its failure is the client's to retry.
 */
describe.skipIf(!has('nginx'))('the gateway in front of a replica that resets a POST', () => {
  const hits: Record<'resets' | 'answers', string[]> = { resets: [], answers: [] };
  let gateway: Awaited<ReturnType<typeof gatewayInFront>> | undefined;
  let url: string;

  const replica = (name: 'resets' | 'answers') =>
    createServer((req, res) => {
      hits[name].push(`${req.method} ${req.url} ${req.headers['idempotency-key'] ?? '-'}`);
      req.resume();
      req.on('end', () => {
        if (name === 'resets' && req.method === 'POST' && req.url!.includes('answer=503'))
          res.writeHead(503, { 'content-type': 'text/plain' }).end(name);
        else if (name === 'resets' && req.method === 'POST') req.socket.resetAndDestroy();
        else res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
      });
    });

  beforeAll(async () => {
    gateway = await gatewayInFront('reset', [replica('resets'), replica('answers')]);
    url = gateway.url;
  }, 30_000);
  afterAll(() => gateway?.stop());

  /**
   * POSTs to `p` (with the key `key` makes of a fresh token, when given) until one reached the resetting replica
   * first; its answer and how it was seen. Round robin sends one there within a few, unless that replica is skipped
   * after failing (`fail_timeout` 3 s).
   */
  const untilOneMeetsTheReset = (p: string, key?: (n: string) => string) =>
    waitFor(
      `a POST ${p} meeting the resetting replica`,
      async () => {
        const n = Math.random().toString(36).slice(2);
        const k = key?.(n);
        const target = `${p}${p.includes('?') ? '&' : '?'}n=${n}`;
        const seen = `POST ${target} ${k ?? '-'}`;
        const res = await send(`${url}${target}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(k !== undefined ? { 'idempotency-key': k } : {}) },
          body: '{}',
        });
        return hits.resets.includes(seen) ? { res, seen } : undefined;
      },
      15_000,
      100,
    );
  const numbered = (n: string) => `k-${n}`;

  it('sends a keyed order on to the other replica when the first reset it, with or without a trailing slash', async () => {
    for (const p of ['/api/v1/orders', '/api/v1/orders/']) {
      const { res, seen } = await untilOneMeetsTheReset(p, numbered);
      expect(res.status, p).toBe(200);
      expect(res.body, p).toBe('answers');
      expect(
        hits.answers.filter((h) => h === seen),
        p,
      ).toHaveLength(1);
    }
  }, 60_000);

  it('passes on the answer a replica gave to a keyed order (a 503 included): never sent again', async () => {
    const { res, seen } = await untilOneMeetsTheReset('/api/v1/orders?answer=503', numbered);
    expect(res.status).toBe(503);
    expect(hits.answers.filter((h) => h === seen)).toEqual([]);
  }, 30_000);

  it('sends a POST without a key, with a key the service refuses, or to a route that ignores keys, to one replica only', async () => {
    for (const [p, key] of [
      ['/api/v1/orders', undefined],
      ['/api/v1/orders', (n: string) => `two words ${n}`],
      ['/api/v1/users', numbered],
    ] as const) {
      const { res, seen } = await untilOneMeetsTheReset(p, key);
      expect(res.status, p).toBe(503);
      expect(JSON.parse(res.body), p).toMatchObject({ code: 'SERVICE.UNAVAILABLE' });
      expect(
        hits.answers.filter((h) => h === seen),
        p,
      ).toEqual([]);
    }
  }, 60_000);

  it('retries only the routes that honour the key: POST /api/v1/orders today', () => {
    expect(Object.fromEntries(MODULE_NAMES.map((m) => [m, keyedWrites(m)]))).toEqual({
      user: [],
      product: [],
      order: ['/api/v1/orders'],
      notification: [],
    });
  });

  it('keeps the internal keyed location unreachable from outside', async () => {
    const before = hits.resets.length + hits.answers.length;
    const res = await send(`${url}/__toko_keyed/order`, { method: 'POST', headers: { 'idempotency-key': 'x' } });
    expect(res.status).toBe(404);
    expect(hits.resets.length + hits.answers.length).toBe(before);
  });
});

/**
 * The gateway in front of two replicas that count the connections they accept: a burst of requests in flight
 * at once leaves its connections to the next burst (UPSTREAM_KEEPALIVE idle ones per upstream), instead of
 * closing those past a small cache and opening them again.
 */
describe.skipIf(!has('nginx'))('the gateway between bursts of requests', () => {
  const accepted = [0, 0];
  let gateway: Awaited<ReturnType<typeof gatewayInFront>> | undefined;
  const replica = (i: number) => {
    const server = createServer((req, res) => {
      req.resume();
      // Every request of a burst is in flight at once: none is answered before the others have arrived.
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'), 200);
    });
    server.on('connection', () => accepted[i]!++);
    server.keepAliveTimeout = 30_000;
    return server;
  };
  beforeAll(async () => {
    gateway = await gatewayInFront('bursts', [replica(0), replica(1)]);
  }, 30_000);
  afterAll(() => gateway?.stop());

  it('reuses the connections of one burst for the next', async () => {
    const burst = async (n: number) => {
      const answers = await Promise.all(
        Array.from({ length: n }, (_, i) => send(`${gateway!.url}/api/v1/products/burst-${i}`)),
      );
      expect(answers.map((a) => a.status)).toEqual(Array(n).fill(200));
    };
    // Three quarters of the idle connections each upstream keeps, spread over two replicas.
    const inFlight = (UPSTREAM_KEEPALIVE * 3) / 4;
    await burst(inFlight);
    const afterFirst = accepted[0]! + accepted[1]!;
    expect(afterFirst).toBeGreaterThanOrEqual(inFlight);
    await burst(inFlight);
    await burst(inFlight);
    // With 16 idle connections kept, each later burst opened 32 of its 48 again.
    expect(accepted[0]! + accepted[1]! - afterFirst).toBe(0);
  }, 30_000);
});
