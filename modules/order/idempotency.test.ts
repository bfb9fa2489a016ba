import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlDatabase, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN, api, newUser } from '../../test/helpers/http.ts';
import { IdempotencyStore, placedWith, type KeyClaim } from './idempotency.ts';
import { table } from './schema.ts';

/**
 * A first attempt that met an outage or a crash after it took its key leaves
 * the key in flight with no outcome. Past the lease, a retry with the same key
 * answers the order that attempt placed, or places one when it placed none,
 * instead of 409 until the key expires; and a slow first attempt whose key was
 * taken over can no longer place an order of its own.
 */
let app: TestApp;
let admin: string;
const http = api(() => app.url);
const sql = () => sqlDatabase(app.server, 'order').sql;

beforeAll(async () => {
  app = await startTestApp({ ADMIN_EMAIL: TEST_ADMIN.email, ADMIN_PASSWORD: TEST_ADMIN.password });
  admin = (await http.post('/api/v1/users/login', TEST_ADMIN)).body.accessToken as string;
});
afterAll(() => app?.close());

async function customer() {
  const u = newUser();
  const id = (await http.post('/api/v1/users/register', u)).body.id as string;
  const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
    .accessToken as string;
  return { id, token };
}

async function product(stock: number): Promise<string> {
  const res = await http.post(
    '/api/v1/products',
    { name: `Barang ${Math.random()}`, price: 10_000, stock, category: 'uji' },
    { token: admin },
  );
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const order = (token: string, productId: string, key: string) =>
  http.post('/api/v1/orders', { items: [{ productId, quantity: 1 }] }, { token, headers: { 'idempotency-key': key } });
const ordersOf = async (token: string) =>
  (await http.get<{ items: { id: string }[] }>('/api/v1/orders?limit=100', { token })).body.items.map((o) => o.id);
/** The key's row as an attempt left it in flight two hours ago (past any lease). */
const abandon = (userId: string, key: string) =>
  sql().query(
    `update ${table('idempotency_keys')} set "state" = 'in_flight', "response_status" = null, "response_body" = null,
       "created_at" = now() - interval '2 hours' where "user_id" = $1 and "key" = $2`,
    [userId, key],
  );

describe('an Idempotency-Key left in flight', () => {
  it('past its lease, a retry answers the order the abandoned attempt placed, and places no second one', async () => {
    const c = await customer();
    const p = await product(10);
    const first = await order(c.token, p, 'placed-then-lost');
    expect(first.status).toBe(201);
    // The attempt placed its order, then could not record its outcome (its database went away).
    await abandon(c.id, 'placed-then-lost');
    const retry = await order(c.token, p, 'placed-then-lost');
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).toBe(first.body.id);
    expect(await ordersOf(c.token)).toEqual([first.body.id]);
  });

  it('past its lease, a retry places the order an attempt abandoned before placing it', async () => {
    const c = await customer();
    const p = await product(10);
    const hash = createHash('sha256')
      .update(JSON.stringify([{ productId: p, quantity: 1 }]))
      .digest('hex');
    // The attempt took its key and died (or met an outage) before its order was created.
    await sql().query(
      `insert into ${table('idempotency_keys')} ("user_id", "key", "request_hash", "state", "created_at", "expires_at")
       values ($1, 'claimed-then-lost', $2, 'in_flight', now() - interval '2 hours', now() + interval '1 day')`,
      [c.id, hash],
    );
    const retry = await order(c.token, p, 'claimed-then-lost');
    expect(retry.status, retry.text).toBe(201);
    expect(await ordersOf(c.token)).toEqual([retry.body.id]);
    // And the key now replays that order.
    expect((await order(c.token, p, 'claimed-then-lost')).body.id).toBe(retry.body.id);
  });

  it('past its lease, a retry answers 409 while the abandoned order is pending, and places it again once rejected', async () => {
    const c = await customer();
    const p = await product(10);
    const first = await order(c.token, p, 'placed-then-released');
    expect(first.status).toBe(201);
    await abandon(c.id, 'placed-then-released');
    const setStatus = (status: string) =>
      sql().query(`update ${table('orders')} set "status" = $2 where "id" = $1`, [first.body.id, status]);
    await setStatus('pending');
    const early = await order(c.token, p, 'placed-then-released');
    expect(early.status).toBe(409);
    expect(early.body.code).toBe('ORDER.IDEMPOTENCY_IN_FLIGHT');
    // The recovery pass released it: that attempt came to nothing, so the retry places the order.
    await setStatus('rejected');
    const retry = await order(c.token, p, 'placed-then-released');
    expect(retry.status, retry.text).toBe(201);
    expect(retry.body.id).not.toBe(first.body.id);
    expect((await ordersOf(c.token)).sort()).toEqual([first.body.id, retry.body.id].sort());
  });

  it('keeps the key of an attempt that failed after placing its order (its confirmation may have committed)', async () => {
    const store = new IdempotencyStore(sql(), { ttlSeconds: 60, leaseSeconds: 60, waitMs: 0, pollMs: 10 });
    const userId = `failed-${Math.random()}`;
    const orderId = '00000000-0000-4000-8000-0000000000aa';
    await expect(
      store.run(
        userId,
        'lost-answer',
        'h'.repeat(64),
        async (claim) => {
          const tag = placedWith(claim, orderId, 1);
          await sql().query(`with ${tag.sql} select "key" from "placed_with"`, [...tag.values]);
          throw new Error('Query read timeout');
        },
        async () => undefined,
      ),
    ).rejects.toThrow('Query read timeout');
    const rows = await sql().query<{ order_id: string; state: string }>(
      `select "order_id", "state" from ${table('idempotency_keys')} where "user_id" = $1`,
      [userId],
    );
    expect(rows).toEqual([{ order_id: orderId, state: 'in_flight' }]);
  });

  it('refuses a different body on an abandoned key', async () => {
    const c = await customer();
    const p = await product(10);
    const other = await product(10);
    expect((await order(c.token, p, 'lost-other-body')).status).toBe(201);
    await abandon(c.id, 'lost-other-body');
    const retry = await order(c.token, other, 'lost-other-body');
    expect(retry.status).toBe(422);
    expect(retry.body.code).toBe('ORDER.IDEMPOTENCY_KEY_REUSED');
  });

  it('lets a slow first attempt whose key was taken over place nothing', async () => {
    const store = new IdempotencyStore(sql(), { ttlSeconds: 60, leaseSeconds: 1, waitMs: 0, pollMs: 10 });
    const userId = `slow-${Math.random()}`;
    const tagged = async (claim: KeyClaim, orderId: string) =>
      (
        await sql().query(`with ${placedWith(claim, orderId, 1).sql} select "key" from "placed_with"`, [
          ...placedWith(claim, orderId, 1).values,
        ])
      ).length;
    const firstOrder = '00000000-0000-4000-8000-000000000001';
    const secondOrder = '00000000-0000-4000-8000-000000000002';
    const outcome = await store.run(
      userId,
      'slow',
      'h'.repeat(64),
      async (first) => {
        // The first attempt stalls past its lease; a retry takes the key and places its order.
        await sql().query(
          `update ${table('idempotency_keys')} set "created_at" = now() - interval '1 hour' where "user_id" = $1`,
          [userId],
        );
        const second = await store.run(
          userId,
          'slow',
          'h'.repeat(64),
          async (claim) => {
            expect(claim.token).not.toBe(first.token);
            expect(await tagged(claim, secondOrder)).toBe(1);
            return 'second';
          },
          async () => 'recovered',
        );
        expect(second).toBe('second');
        // The first attempt wakes up: its claim no longer holds the key, so its order is not created.
        expect(await tagged(first, firstOrder)).toBe(0);
        return 'first';
      },
      async () => 'recovered',
    );
    expect(outcome).toBe('first');
    const [row] = await sql().query<{ order_id: string }>(
      `select "order_id" from ${table('idempotency_keys')} where "user_id" = $1`,
      [userId],
    );
    expect(row?.order_id).toBe(secondOrder);
  });
});
