import { createServer, type AddressInfo } from 'node:net';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productModule } from '../../modules/product/index.ts';
import { sqlDatabase, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN, call, type Res } from '../../test/helpers/http.ts';
import { Hop } from '../../test/helpers/hop.ts';
import { waitFor } from '../../test/helpers/wait.ts';
import { openModuleMongo } from './mongo.ts';
import { isStoreOutage } from './outage.ts';

describe('a database that goes away', () => {
  let owner: TestApp;
  let app: TestApp;
  let hop: Hop;
  beforeAll(async () => {
    // `owner` holds the database (embedded or PostgreSQL); `app` reaches it only through the hop.
    owner = await startTestApp();
    const url = new URL(String(sqlDatabase(owner.server, 'product').orm.config.get('clientUrl')));
    hop = new Hop({ host: url.hostname, port: Number(url.port || 5432) });
    url.port = String(await hop.listen());
    app = await startTestApp({
      DATABASE_URL: url.toString(),
      STORE_TIMEOUT_MS: '500',
      // Only requests use the cut link: no background look for a moved-data marker holds a connection through it.
      MOVED_DATA_POLL_MS: '0',
      ADMIN_EMAIL: TEST_ADMIN.email,
      ADMIN_PASSWORD: TEST_ADMIN.password,
    });
  });
  afterAll(async () => {
    await app?.close();
    await hop?.close();
    await owner?.close();
  });

  /** An uncached read: a product id nobody asked for before. */
  const uncached = () =>
    `/api/v1/products/${[...Array(24)].map(() => Math.floor(Math.random() * 16).toString(16)).join('')}`;
  const get = (path: string) => call(app.url, 'GET', path, {});

  it('answers 503 with Retry-After, never 500 and never a hang, on every route that needs it, and recovers when it is back', async () => {
    expect((await get(uncached())).status).toBe(404);

    for (const mode of ['refuse', 'blackhole'] as const) {
      hop.cut(mode);
      for (const res of [
        await get(uncached()),
        await call(app.url, 'POST', '/api/v1/users/login', {
          body: { email: 'someone@toko.test', password: 'long-enough-password' },
        }),
      ]) {
        expect(res.status, `${mode}: ${res.text}`).toBe(503);
        expect(res.headers.get('retry-after')).toBe('5');
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(res.body).toMatchObject({ code: 'SERVICE.UNAVAILABLE', status: 503 });
        expect(res.text).not.toMatch(/ECONNREFUSED|Knex|127\.0\.0\.1|stack/i);
      }
      hop.mode = 'pass';
      expect((await get(uncached())).status, `${mode}: back`).toBe(404);
    }
    // Logged as what it is: a dependency down, not a fault in toko.
    expect(app.logs.some((l) => l.msg === 'a database is unavailable; answered 503')).toBe(true);
    expect(app.logs.some((l) => l.msg === 'unhandled error')).toBe(false);
    // An outage is a warning, request lines included: nothing in toko is at fault.
    expect(app.logs.filter((l) => l.msg === 'request' && l.status === 503).map((l) => l.level)).toContain('warn');
    expect(app.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);

  it('answers 503 within its wait when the database freezes under open connections (SIGSTOP), and recovers on thaw', async () => {
    // Warm the pool: the connections a frozen database leaves open are the ones that hang.
    await Promise.all(Array.from({ length: 4 }, () => get(uncached())));
    hop.freeze();
    try {
      // A request still unanswered after 10 s counts as a hang (status 0).
      const hang = () =>
        new Promise<Res>((r) =>
          setTimeout(() => r({ status: 0, text: 'hung', body: {}, headers: new Headers() }), 10_000).unref(),
        );
      const frozen = await Promise.all(
        [
          get(uncached()),
          get(uncached()),
          call(app.url, 'POST', '/api/v1/users/login', {
            body: { email: 'someone@toko.test', password: 'long-enough-password' },
          }),
        ].map((request) => Promise.race([request, hang()])),
      );
      for (const res of frozen) {
        expect(res.status, res.text).toBe(503);
        expect(res.body).toMatchObject({ code: 'SERVICE.UNAVAILABLE', status: 503 });
      }
    } finally {
      hop.thaw();
    }
    await waitFor(
      'reads again after the thaw',
      async () => ((await get(uncached())).status === 404 ? true : undefined),
      10_000,
      100,
    );
    expect(app.logs.filter((l) => l.level === 'error')).toEqual([]);
  }, 60_000);
});

describe('MongoDB that does not answer', () => {
  it('gives up after the configured wait with an error recognised as an outage', async () => {
    const silent = createServer((s) => void s.on('error', () => undefined));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    try {
      const err = await openModuleMongo(productModule, {
        clientUrl: `mongodb://127.0.0.1:${port}/toko?directConnection=true`,
        timeoutMs: 300,
        logger: pino({ level: 'silent' }),
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(isStoreOutage(err)).toBe(true);
    } finally {
      silent.close();
    }
  }, 20_000);
});

describe('isStoreOutage', () => {
  it('knows the drivers’ outage errors and nothing else', () => {
    expect(
      isStoreOutage(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(
      isStoreOutage(Object.assign(new Error('Knex: Timeout acquiring a connection.'), { name: 'KnexTimeoutError' })),
    ).toBe(true);
    expect(
      isStoreOutage(Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' })),
    ).toBe(true);
    expect(isStoreOutage(new Error('wrapped', { cause: Object.assign(new Error('x'), { code: '08006' }) }))).toBe(true);
    // A protocol violation is what a NUL in a value earns: bad input, which must not trip the outage alert.
    expect(isStoreOutage(Object.assign(new Error('invalid message format'), { code: '08P01' }))).toBe(false);
    expect(isStoreOutage(Object.assign(new Error('duplicate key value'), { code: '23505' }))).toBe(false);
    expect(isStoreOutage(new TypeError('undefined is not a function'))).toBe(false);
    expect(isStoreOutage('ECONNREFUSED')).toBe(false);
  });

  it('knows the MongoDB timeouts MikroORM rewraps as a DriverException with no cause, and not its other driver errors', () => {
    const driver = (message: string) => Object.assign(new Error(message), { name: 'DriverException' });
    expect(isStoreOutage(driver('Server selection timed out after 2000 ms'))).toBe(true);
    expect(isStoreOutage(driver('Timed out while checking out a connection from connection pool'))).toBe(true);
    expect(isStoreOutage(driver('connection 3 to 127.0.0.1:27017 timed out'))).toBe(true);
    expect(isStoreOutage(driver('connection 3 to 127.0.0.1:27017 closed'))).toBe(true);
    expect(
      isStoreOutage(driver('Connection pool for 127.0.0.1:27017 was cleared because another operation failed')),
    ).toBe(true);
    expect(isStoreOutage(driver('E11000 duplicate key error collection: toko.product'))).toBe(false);
    expect(isStoreOutage(new Error('Server selection timed out after 2000 ms'))).toBe(false);
  });
});
