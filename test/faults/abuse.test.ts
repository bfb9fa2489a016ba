import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/app.ts';
import { call, newUser, type Res } from '../helpers/http.ts';
import { FAST_RECOVERY, FAST_SPLIT, Shop, report, type Order } from './harness.ts';
import { startSplitRig } from '../helpers/split.ts';

/**
 * Hostile input against both topologies: a fuzz corpus over every JSON
 * route, slow clients, oversize bodies, a login burst, forged tokens, and
 * other people's data. Nothing may answer 5xx; every refusal is a problem
 * document; nothing stored is changed by it.
 */
interface Target {
  url: string;
  /** Where a node process answers directly (slow-loris is checked there and at the url). */
  nodeUrl: string;
  keysDir: string;
  close(): Promise<void>;
}

const ABUSE_ENV = {
  ...FAST_RECOVERY,
  HTTP_HEADERS_TIMEOUT_MS: '1000',
  HTTP_REQUEST_TIMEOUT_MS: '2000',
  LOGIN_MAX_FAILURES: '5',
};

const topologies: { name: string; start: () => Promise<Target> }[] = [
  {
    name: 'one process',
    start: async () => {
      const app = await startTestApp(ABUSE_ENV);
      return { url: app.url, nodeUrl: app.url, keysDir: path.join(app.db.dataDir, 'keys'), close: () => app.close() };
    },
  },
  {
    name: 'split behind the gateway',
    start: async () => {
      const rig = await startSplitRig({ ...FAST_SPLIT, ...ABUSE_ENV });
      return {
        url: rig.url,
        nodeUrl: rig.topology.serviceUrl('order'),
        keysDir: path.join(rig.dataDir, 'user', 'keys'),
        close: () => rig.close(),
      };
    },
  },
];

type Op = { requestBody?: { content: Record<string, { schema: { $ref?: string } }> } };
type Doc = {
  paths: Record<string, Record<string, Op>>;
  components: { schemas: Record<string, { example?: Record<string, unknown> }> };
};

const DEEP_ARRAY = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
const deepObject = (n: number): unknown => (n === 0 ? 1 : { a: deepObject(n - 1) });
const MALFORMED = [
  '{',
  '{"a":}',
  '[',
  'nul',
  '{"a":1,}',
  "{'a':1}",
  '\u0000',
  '"just a string"',
  '123',
  'null',
  '[]',
  'true',
  '{"a":1}{"b":2}',
  DEEP_ARRAY,
  '{"a":"\\ud800"}',
];
const WRONG = [
  null,
  0,
  -1,
  1.5,
  1e308,
  true,
  'x',
  '',
  [],
  {},
  [1, 2],
  { $ne: null },
  { $gt: '' },
  '🛒 Ünïcödé ‮ʇxǝʇ \u0000 end',
  'a'.repeat(50_000),
  deepObject(500),
];
const POLLUTION = [
  '{"__proto__":{"role":"admin","polluted":"yes"}}',
  '{"constructor":{"prototype":{"role":"admin","polluted":"yes"}}}',
  '{"items":[{"__proto__":{"quantity":1}}]}',
];

function isProblem(res: Res): boolean {
  return (
    (res.headers.get('content-type') ?? '').startsWith('application/problem+json') &&
    (res.body as { status?: number }).status === res.status
  );
}

/** Opens a connection and sends `head` then one more chunk every `everyMs`, until the server closes it. */
function dribble(
  url: string,
  head: string,
  chunk: string,
  everyMs: number,
  giveUpMs: number,
): Promise<{ closedAfterMs: number; answer: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const started = Date.now();
    let answer = '';
    const socket = connect(Number(port), hostname, () => socket.write(head));
    const timer = setInterval(() => socket.writable && socket.write(chunk), everyMs);
    const giveUp = setTimeout(() => socket.destroy(), giveUpMs);
    socket.on('data', (d: Buffer) => (answer += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - started, answer: answer.split('\r\n')[0] ?? '' });
    });
  });
}

describe.each(topologies)('abuse: $name', ({ name, start }) => {
  let t: Target;
  const shop = new Shop(() => t.url);
  let admin = '';
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let productId = '';
  let aliceOrder: Order;

  beforeAll(async () => {
    t = await start();
    admin = await shop.admin();
    alice = await shop.customer();
    bob = await shop.customer();
    productId = await shop.product(admin, 100, 'Teh Tarik Untouchable');
    aliceOrder = (await shop.place(alice.token, [{ productId, quantity: 2 }])).body;
  }, 120_000);
  afterAll(() => t?.close());

  it('answers the fuzz corpus on every JSON route with problems, never a 5xx, and changes nothing stored', async () => {
    const doc = (await call<Doc>(t.url, 'GET', '/openapi.json')).body;
    const victim = await shop.product(admin, 7, 'Kopi Luwak Witness');
    // Bodies that happen to be valid may change their target: fuzz a product and an order of their own.
    const target = await shop.product(admin, 1000, 'Fuzz Target');
    const targetOrder = (await shop.place(alice.token, [{ productId: target, quantity: 1 }])).body;
    const before = (await call(t.url, 'GET', `/api/v1/products/${victim}`)).body;
    const statuses = new Map<number, number>();
    const bad: string[] = [];
    let sent = 0;
    const send = async (method: string, p: string, raw: string, token: string) => {
      const res = await call(t.url, method.toUpperCase(), p, {
        raw,
        token,
        headers: { 'content-type': 'application/json' },
      });
      sent++;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const leaks = /\n\s+at |node_modules|\.ts:\d+/.test(res.text);
      if (res.status >= 500 || res.status === 0 || (res.status >= 400 && !isProblem(res)) || leaks)
        bad.push(`${method} ${p} ${raw.slice(0, 60)} → ${res.status} ${res.text.slice(0, 120)}`);
    };
    for (const [template, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const media = op.requestBody?.content['application/json'];
        if (!media) continue;
        const p = template.replace('{id}', template.startsWith('/api/v1/products') ? target : targetOrder.id);
        const token = template.startsWith('/api/v1/products') ? admin : alice.token;
        const example = doc.components.schemas[media.schema.$ref!.split('/').at(-1)!]!.example ?? {};
        for (const raw of [...MALFORMED, ...POLLUTION]) await send(method, p, raw, token);
        for (const key of Object.keys(example))
          for (const value of WRONG) await send(method, p, JSON.stringify({ ...example, [key]: value }), token);
        await send(method, p, JSON.stringify({ ...example, extra: 'not in the schema' }), token);
      }
    }
    // Path parameters that are not ids.
    for (const odd of [
      'x',
      '%00',
      '..%2F..%2Fetc%2Fpasswd',
      'a'.repeat(600),
      "1'%20or%20'1'='1",
      '%F0%9F%9B%92',
      '$where',
    ]) {
      for (const p of [
        `/api/v1/products/${odd}`,
        `/api/v1/orders/${odd}`,
        `/api/v1/users/${odd}`,
        `/api/v1/notifications/${odd}`,
      ]) {
        const res = await call(t.url, 'GET', p, { token: alice.token });
        sent++;
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500 || (res.status >= 400 && !isProblem(res))) bad.push(`GET ${p} → ${res.status}`);
      }
    }
    const after = (await call(t.url, 'GET', `/api/v1/products/${victim}`)).body;
    report(`fuzz corpus (${name})`, {
      requests: sent,
      statuses: Object.fromEntries(statuses),
      fiveHundreds: [...statuses].filter(([s]) => s >= 500).length,
      badAnswers: bad.length,
    });
    expect(bad).toEqual([]);
    expect(after).toEqual(before);
    // Nothing was polluted: a customer is still a customer, and objects have no stray keys.
    expect((await call(t.url, 'GET', '/api/v1/users', { token: alice.token })).status).toBe(403);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const me = (await call(t.url, 'GET', '/api/v1/users/me', { token: alice.token })).body;
    expect(me.role).toBe('customer');
  });

  it('cuts off slow-loris clients: headers and bodies that never finish', async () => {
    const gatewayToo = t.url !== t.nodeUrl;
    const checks = await Promise.all([
      dribble(t.nodeUrl, 'GET /health HTTP/1.1\r\nHost: toko\r\n', 'X-Slow: 1\r\n', 300, 20_000),
      dribble(
        t.nodeUrl,
        'POST /api/v1/users/login HTTP/1.1\r\nHost: toko\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
        ' ',
        300,
        20_000,
      ),
      ...(gatewayToo ? [dribble(t.url, 'GET /health HTTP/1.1\r\nHost: toko\r\n', 'X-Slow: 1\r\n', 300, 30_000)] : []),
    ]);
    report(`slow-loris (${name})`, {
      closedAfterMs: checks.map((c) => c.closedAfterMs),
      answers: checks.map((c) => c.answer),
    });
    // The node server: 1 s for headers, 2 s for a whole request (this run's settings), checked every second.
    expect(checks[0]!.closedAfterMs).toBeLessThan(5000);
    expect(checks[0]!.answer).toMatch(/^(HTTP\/1\.1 408 .*)?$/);
    expect(checks[1]!.closedAfterMs).toBeLessThan(6000);
    // The gateway: nginx's client_header_timeout (10 s) from the template.
    if (gatewayToo) expect(checks[2]!.closedAfterMs).toBeLessThan(15_000);
  }, 40_000);

  it('refuses oversize bodies with 413 problems', async () => {
    const big = JSON.stringify({ ...newUser(), fullName: 'x'.repeat(200_000) });
    const res = await call(t.url, 'POST', '/api/v1/users/register', {
      raw: big,
      headers: { 'content-type': 'application/json' },
    });
    const huge = await call(t.url, 'POST', '/api/v1/users/register', {
      raw: 'x'.repeat(3_000_000),
      headers: { 'content-type': 'application/json' },
    });
    report(`oversize (${name})`, { '200 kB': res.status, '3 MB': huge.status });
    for (const r of [res, huge]) {
      expect(r.status).toBe(413);
      expect(isProblem(r)).toBe(true);
    }
  });

  it('holds login throttling under a burst', async () => {
    const u = newUser();
    await call(t.url, 'POST', '/api/v1/users/register', { body: u });
    const burst = await Promise.all(
      Array.from({ length: 30 }, () =>
        call(t.url, 'POST', '/api/v1/users/login', { body: { email: u.email, password: 'wrong-password!' } }),
      ),
    );
    const count = (s: number) => burst.filter((r) => r.status === s).length;
    const right = await call(t.url, 'POST', '/api/v1/users/login', { body: { email: u.email, password: u.password } });
    report(`login burst (${name})`, {
      attempts: 30,
      answered401: count(401),
      answered429: count(429),
      rightPasswordAfter: right.status,
    });
    expect(count(401) + count(429)).toBe(30);
    expect(count(401)).toBeLessThanOrEqual(5);
    expect(right.status).toBe(429);
    expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  it('refuses forged and stale tokens everywhere: alg none, HS256 with the public key, expired, wrong audience', async () => {
    const publicPem = readFileSync(path.join(t.keysDir, 'jwt-public.pem'), 'utf8');
    const privatePem = readFileSync(path.join(t.keysDir, 'jwt-private.pem'), 'utf8');
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const now = Math.floor(Date.now() / 1000);
    const claims = { sub: alice.id, role: 'admin', iss: 'toko', aud: 'toko-api', iat: now, exp: now + 600 };
    const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
    const forged = {
      none: `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`,
      hs256WithPublicKey: `${hsInput}.${createHmac('sha256', publicPem).update(hsInput).digest('base64url')}`,
      expired: jwt.sign({ role: 'customer', iat: now - 7200, exp: now - 3600 }, privatePem, {
        algorithm: 'RS256',
        subject: alice.id,
        issuer: 'toko',
        audience: 'toko-api',
      }),
      wrongAudience: jwt.sign({ role: 'customer' }, privatePem, {
        algorithm: 'RS256',
        subject: alice.id,
        issuer: 'toko',
        audience: 'someone-else',
      }),
    };
    const answers: Record<string, number[]> = {};
    for (const [kind, token] of Object.entries(forged)) {
      answers[kind] = [];
      for (const p of ['/api/v1/users/me', '/api/v1/orders', '/api/v1/notifications']) {
        const res = await call(t.url, 'GET', p, { token });
        answers[kind].push(res.status);
        expect(isProblem(res), `${kind} ${p}`).toBe(true);
      }
    }
    report(`forged tokens (${name})`, answers);
    for (const statuses of Object.values(answers)) expect(statuses).toEqual([401, 401, 401]);
  });

  it("hides other people's orders and notifications (BOLA → 404) and keeps customers off admin routes (BFLA → 403)", async () => {
    const note = (await shop.all<{ id: string }>(`/api/v1/notifications?userId=${alice.id}`, admin))[0]!;
    const bola = {
      order: (await call(t.url, 'GET', `/api/v1/orders/${aliceOrder.id}`, { token: bob.token })).status,
      cancel: (await call(t.url, 'POST', `/api/v1/orders/${aliceOrder.id}/cancel`, { token: bob.token })).status,
      notification: (await call(t.url, 'GET', `/api/v1/notifications/${note.id}`, { token: bob.token })).status,
      user: (await call(t.url, 'GET', `/api/v1/users/${alice.id}`, { token: bob.token })).status,
      listOthersOrders: (await call(t.url, 'GET', `/api/v1/orders?userId=${alice.id}`, { token: bob.token })).status,
    };
    const bfla = {
      createProduct: (
        await call(t.url, 'POST', '/api/v1/products', {
          token: bob.token,
          body: { name: 'x', price: 1, stock: 1, category: 'x' },
        })
      ).status,
      patchProduct: (
        await call(t.url, 'PATCH', `/api/v1/products/${productId}`, { token: bob.token, body: { price: 1 } })
      ).status,
      deleteProduct: (await call(t.url, 'DELETE', `/api/v1/products/${productId}`, { token: bob.token })).status,
      restock: (
        await call(t.url, 'POST', `/api/v1/products/${productId}/stock`, { token: bob.token, body: { delta: 1000 } })
      ).status,
      listUsers: (await call(t.url, 'GET', '/api/v1/users', { token: bob.token })).status,
      deadEvents: (await call(t.url, 'GET', '/api/v1/admin/events/order?status=dead', { token: bob.token })).status,
      replay: (await call(t.url, 'POST', '/api/v1/admin/events/order/replay', { token: bob.token })).status,
    };
    report(`BOLA/BFLA (${name})`, { bola, bfla });
    expect(bola).toEqual({ order: 404, cancel: 404, notification: 404, user: 404, listOthersOrders: 403 });
    expect(Object.values(bfla).every((s) => s === 403)).toBe(true);
    // Alice's order is untouched, and the product too.
    expect((await call(t.url, 'GET', `/api/v1/orders/${aliceOrder.id}`, { token: alice.token })).body.status).toBe(
      'confirmed',
    );
    expect(await shop.stock(productId)).toBe(98);
  });
});
