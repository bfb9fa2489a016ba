import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { OrderNotFound, orderContract, type OrderPort } from '../../modules/order/contract.ts';
import {
  OutOfStock,
  ProductNotFound,
  ReservationClosed,
  productContract,
  type ProductPort,
} from '../../modules/product/contract.ts';
import { UserNotFound, userContract, type UserPort } from '../../modules/user/contract.ts';
import { defineContract } from '../../kit/contract.ts';
import { BadGateway, ServiceUnavailable, ValidationFailed } from '../../kit/errors.ts';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN_ENV, createProduct, newUser } from '../../test/helpers/http.ts';
import { httpPort, type HttpPortOptions } from './contract-client.ts';
import { SERVICE_KEY_HEADER } from './service-key.ts';

const KEY = 'a-service-key-for-tests';
const logger = pino({ level: 'silent' });
const options = (baseUrl: string, over: Partial<HttpPortOptions> = {}): HttpPortOptions => ({
  baseUrl,
  serviceKey: KEY,
  timeoutMs: 2000,
  retries: 2,
  retryBaseMs: 5,
  breaker: { errorThresholdPercentage: 50, volumeThreshold: 3, resetTimeoutMs: 60_000 },
  logger,
  ...over,
});

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ SERVICE_KEY: KEY, ...TEST_ADMIN_ENV });
});
afterAll(() => app?.close());

const newProduct = (stock: number) => createProduct(app.url, { stock });

/** What every ProductPort promises, whichever transport carries it. */
function productPortSuite(port: () => ProductPort) {
  it('reserves all or nothing, repeats a reservation exactly, and releases once', async () => {
    const a = await newProduct(5);
    const rid = `r-${Math.random()}`;
    const first = await port().reserveStock({ reservationId: rid, items: [{ productId: a, quantity: 2 }] });
    expect(await port().reserveStock({ reservationId: rid, items: [{ productId: a, quantity: 2 }] })).toEqual(first);
    expect((await port().getProducts({ ids: [a] }))[0]!.stock).toBe(3);
    expect(await port().releaseStock({ reservationId: rid })).toEqual({ released: true });
    expect(await port().releaseStock({ reservationId: rid })).toEqual({ released: false });
    expect((await port().getProducts({ ids: [a] }))[0]!.stock).toBe(5);
  });

  it('throws the contract’s own error classes with their details', async () => {
    const a = await newProduct(1);
    const short = await port()
      .reserveStock({ reservationId: `r-${Math.random()}`, items: [{ productId: a, quantity: 2 }] })
      .catch((e: unknown) => e);
    expect(short).toBeInstanceOf(OutOfStock);
    expect((short as OutOfStock).extras.items).toEqual([{ productId: a, requested: 2, available: 1 }]);
    const missing = await port()
      .reserveStock({
        reservationId: `r-${Math.random()}`,
        items: [{ productId: '0123456789abcdef01234567', quantity: 1 }],
      })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ProductNotFound);
    const rid = `r-${Math.random()}`;
    await port().releaseStock({ reservationId: rid });
    await expect(
      port().reserveStock({ reservationId: rid, items: [{ productId: a, quantity: 1 }] }),
    ).rejects.toBeInstanceOf(ReservationClosed);
    await expect(port().reserveStock({ reservationId: '', items: [] })).rejects.toBeInstanceOf(ValidationFailed);
  });
}

describe('the product contract in process', () => {
  productPortSuite(() => app.server.ports.get('product') as ProductPort);
});

describe('the product contract over HTTP', () => {
  let remote: ProductPort;
  beforeAll(() => {
    remote = httpPort(productContract, options(app.url)).port;
  });
  productPortSuite(() => remote);

  it('refuses internal calls without the service key', async () => {
    const url = `${app.url}/internal/v1/product/getProducts`;
    const none = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"ids":[]}',
    });
    expect(none.status).toBe(401);
    const wrong = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SERVICE_KEY_HEADER]: 'nope' },
      body: '{"ids":[]}',
    });
    expect(wrong.status).toBe(401);
    const right = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', [SERVICE_KEY_HEADER]: KEY },
      body: '{"ids":[]}',
    });
    expect(await right.json()).toEqual([]);
  });

  it('turns a refused service key into 503 for the caller, logged as an error, never the remote’s 401', async () => {
    const lines: { level: number; msg: string; remote?: string; status?: number }[] = [];
    const spy = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const wrongKey = httpPort(userContract, options(app.url, { serviceKey: 'not-the-key', logger: spy })).port;
    const err = (await wrongKey
      .getUser({ id: '00000000-0000-4000-8000-000000000000' })
      .catch((e: unknown) => e)) as ServiceUnavailable;
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(err.status).toBe(503);
    expect(err.message).not.toMatch(/key|401/i);
    expect(lines).toContainEqual(
      expect.objectContaining({ level: 50, remote: 'user', status: 401, msg: expect.stringMatching(/SERVICE_KEY/) }),
    );
  });
});

describe.each([
  [
    'in process',
    (): { users: UserPort; orders: OrderPort } => ({
      users: app.server.ports.get('user') as UserPort,
      orders: app.server.ports.get('order') as OrderPort,
    }),
  ],
  [
    'over HTTP',
    (): { users: UserPort; orders: OrderPort } => ({
      users: httpPort(userContract, options(app.url)).port,
      orders: httpPort(orderContract, options(app.url)).port,
    }),
  ],
])('the user and order contracts %s', (_how, make) => {
  it('return public profiles, leave unknown ids out, and throw the typed not-found errors', async () => {
    const { users, orders } = make();
    const u = newUser();
    const reg = await fetch(`${app.url}/api/v1/users/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(u),
    });
    const id = ((await reg.json()) as { id: string }).id;
    const profile = await users.getUser({ id });
    expect(profile).toMatchObject({ id, email: u.email, username: u.username, role: 'customer' });
    expect(profile).not.toHaveProperty('passwordHash');
    expect(await users.getUsers({ ids: [id, '00000000-0000-4000-8000-000000000000'] })).toEqual([profile]);
    await expect(users.getUser({ id: '00000000-0000-4000-8000-000000000000' })).rejects.toBeInstanceOf(UserNotFound);
    await expect(orders.getOrder({ id: '00000000-0000-4000-8000-000000000000' })).rejects.toBeInstanceOf(OrderNotFound);
  });
});

describe('resilience', () => {
  const flaky = defineContract({
    name: 'flaky',
    methods: {
      read: { input: z.object({}), output: z.object({ n: z.number() }), idempotent: true },
      write: { input: z.object({}), output: z.object({ n: z.number() }), idempotent: false },
    },
    events: {},
    errors: [],
  });
  let server: Server;
  let failuresLeft = 0;
  let calls = 0;
  let url = '';
  /** When set, the next answer: a status and a problem body. */
  let problem: { status: number; body: unknown } | undefined;
  beforeAll(async () => {
    server = createServer((req, res) => {
      calls++;
      if (problem) {
        res.writeHead(problem.status, { 'content-type': 'application/problem+json' }).end(JSON.stringify(problem.body));
        problem = undefined;
        return;
      }
      if (failuresLeft > 0) {
        failuresLeft--;
        res.writeHead(502).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ n: calls }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('retries idempotent methods with backoff, and never the others', async () => {
    const { port } = httpPort(
      flaky,
      options(url, { breaker: { errorThresholdPercentage: 100, volumeThreshold: 100, resetTimeoutMs: 1000 } }),
    );
    failuresLeft = 2;
    calls = 0;
    expect(await port.read({})).toEqual({ n: 3 });
    failuresLeft = 1;
    calls = 0;
    await expect(port.write({})).rejects.toBeInstanceOf(ServiceUnavailable);
    expect(calls).toBe(1);
  });

  it('answers 502 for a problem code the contract does not declare, whatever status the remote gave, and does not retry it', async () => {
    const { port } = httpPort(flaky, options(url));
    for (const status of [400, 404, 409, 418]) {
      problem = {
        status,
        body: { type: 'urn:x', title: 'Odd', status, code: 'ELSEWHERE.ODD', detail: 'secret internals' },
      };
      calls = 0;
      const err = (await port.read({}).catch((e: unknown) => e)) as BadGateway;
      expect(err, `remote ${status}`).toBeInstanceOf(BadGateway);
      expect(err.status).toBe(502);
      expect(err.message).not.toMatch(/secret/);
      expect(calls).toBe(1);
    }
    // A 4xx without any problem code is not the contract's either.
    problem = { status: 404, body: 'no' };
    await expect(port.read({})).rejects.toBeInstanceOf(BadGateway);
  });

  it('opens the breaker after repeated failures and then fails fast without calling', async () => {
    const { port, breaker } = httpPort(flaky, options('http://127.0.0.1:9', { retries: 0 }));
    for (let i = 0; i < 3; i++) await expect(port.read({})).rejects.toBeInstanceOf(ServiceUnavailable);
    expect(breaker.opened).toBe(true);
    const started = performance.now();
    const err = (await port.read({}).catch((e: unknown) => e)) as ServiceUnavailable;
    console.log(`open-breaker answer took ${(performance.now() - started).toFixed(2)} ms`);
    expect(err).toBeInstanceOf(ServiceUnavailable);
    expect(err.message).toMatch(/circuit open/);
    expect(err.headers['Retry-After']).toBe('60');
  });
});
