import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, newUser } from '../../test/helpers/http.ts';

const ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };

type Product = { id: string; stock: number; price: number; name: string };
type Order = {
  id: string;
  userId: string;
  status: string;
  total: number;
  currency: string;
  rejectionReason: string | null;
  items: { productId: string; name: string; unitPrice: number; quantity: number; lineTotal: number }[];
};

let app: TestApp;
let admin: string;
const http = api(() => app.url);

beforeAll(async () => {
  app = await startTestApp({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    ORDER_MAX_QUANTITY: '20',
    ORDER_MAX_LINES: '3',
  });
  admin = (await http.post('/api/v1/users/login', ADMIN)).body.accessToken as string;
});
afterAll(() => app?.close());

async function customer() {
  const u = newUser();
  const reg = await http.post('/api/v1/users/register', u);
  const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
    .accessToken as string;
  return { id: reg.body.id as string, token };
}

async function product(stock: number, price = 1_500_000): Promise<Product> {
  const res = await http.post<Product>(
    '/api/v1/products',
    { name: `Barang ${Math.random()}`, price, stock, category: 'uji' },
    { token: admin },
  );
  expect(res.status).toBe(201);
  return res.body;
}

const stockOf = async (id: string) => (await http.get<Product>(`/api/v1/products/${id}`)).body.stock;
const order = (token: string, items: { productId: string; quantity: number }[], headers: Record<string, string> = {}) =>
  http.post<Order & Record<string, unknown>>('/api/v1/orders', { items }, { token, headers });

describe('POST /api/v1/orders', () => {
  it('confirms an order with snapshot prices and a total, and takes the stock', async () => {
    const c = await customer();
    const a = await product(10, 1_500_000);
    const b = await product(5, 250_000);
    const res = await order(c.token, [
      { productId: a.id, quantity: 2 },
      { productId: b.id, quantity: 1 },
    ]);
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      userId: c.id,
      status: 'confirmed',
      currency: 'IDR',
      total: 3_250_000,
      rejectionReason: null,
    });
    expect(res.body.items).toEqual([
      { productId: a.id, name: a.name, unitPrice: 1_500_000, quantity: 2, lineTotal: 3_000_000 },
      { productId: b.id, name: b.name, unitPrice: 250_000, quantity: 1, lineTotal: 250_000 },
    ]);
    expect(await stockOf(a.id)).toBe(8);
    expect(await stockOf(b.id)).toBe(4);
    // A later price change does not touch the order.
    await http.send('PATCH', `/api/v1/products/${a.id}`, { body: { price: 9 }, token: admin });
    expect((await http.get<Order>(`/api/v1/orders/${res.body.id}`, { token: c.token })).body.total).toBe(3_250_000);
  });

  it('merges lines of the same product', async () => {
    const c = await customer();
    const a = await product(10);
    const res = await order(c.token, [
      { productId: a.id, quantity: 2 },
      { productId: a.id, quantity: 3 },
    ]);
    expect(res.body.items).toEqual([expect.objectContaining({ productId: a.id, quantity: 5 })]);
    expect(await stockOf(a.id)).toBe(5);
  });

  it('answers 422 for unknown products, bad quantities and limits, and stores nothing', async () => {
    const c = await customer();
    const a = await product(100);
    const cases: [unknown, string[]][] = [
      [{ items: [{ productId: '0123456789abcdef01234567', quantity: 1 }] }, ['items.0.productId']],
      [{ items: [{ productId: 'nope', quantity: 0 }] }, ['items.0.productId', 'items.0.quantity']],
      [{ items: [] }, ['items']],
      [{ items: [{ productId: a.id, quantity: 1.5 }] }, ['items.0.quantity']],
      [
        {
          items: [
            { productId: a.id, quantity: 15 },
            { productId: a.id, quantity: 6 },
          ],
        },
        ['items.0.quantity'],
      ],
      [{ items: [{ productId: a.id, quantity: 1 }], note: 'x' }, ['note']],
    ];
    for (const [body, paths] of cases) {
      const res = await http.post('/api/v1/orders', body, { token: c.token });
      expect({
        body,
        status: res.status,
        paths: (res.body.errors as { path: string }[]).map((e) => e.path).sort(),
      }).toEqual({ body, status: 422, paths });
    }
    const tooMany = await Promise.all([product(1), product(1), product(1), product(1)]);
    const res = await order(
      c.token,
      tooMany.map((p) => ({ productId: p.id, quantity: 1 })),
    );
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'items', message: 'At most 3 different products per order' }]);
    expect(await stockOf(a.id)).toBe(100);
    expect((await http.get<{ total: number }>('/api/v1/orders', { token: c.token })).body.total).toBe(0);
  });

  it('rejects with 409 naming the short product and leaves the other line’s stock alone', async () => {
    const c = await customer();
    const a = await product(10);
    const b = await product(1);
    const res = await order(c.token, [
      { productId: a.id, quantity: 3 },
      { productId: b.id, quantity: 2 },
    ]);
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({
      code: 'ORDER.OUT_OF_STOCK',
      items: [{ productId: b.id, requested: 2, available: 1 }],
    });
    expect(await stockOf(a.id)).toBe(10);
    expect(await stockOf(b.id)).toBe(1);
    const rejected = await http.get<Order>(`/api/v1/orders/${res.body.orderId as string}`, { token: c.token });
    expect(rejected.body).toMatchObject({ status: 'rejected', rejectionReason: 'out_of_stock' });
  });

  it('never oversells: 50 concurrent orders for stock 10 give 10 confirmed and 40 rejected', async () => {
    const buyers = await Promise.all(Array.from({ length: 5 }, customer));
    const a = await product(10);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => order(buyers[i % 5]!.token, [{ productId: a.id, quantity: 1 }])),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(10);
    expect(statuses.filter((s) => s === 409)).toHaveLength(40);
    expect(await stockOf(a.id)).toBe(0);
    const all = await http.get<{ items: Order[] }>(`/api/v1/orders?limit=100`, { token: admin });
    const mine = all.body.items.filter((o) => o.items.some((l) => l.productId === a.id));
    expect(mine.filter((o) => o.status === 'confirmed')).toHaveLength(10);
    expect(mine.filter((o) => o.status === 'rejected')).toHaveLength(40);
  });

  it('keeps no partial reservation when multi-product orders race', async () => {
    const c = await customer();
    const a = await product(10);
    const b = await product(4);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        order(c.token, [
          { productId: a.id, quantity: 1 },
          { productId: b.id, quantity: 1 },
        ]),
      ),
    );
    expect(results.filter((r) => r.status === 201)).toHaveLength(4);
    expect(await stockOf(a.id)).toBe(6);
    expect(await stockOf(b.id)).toBe(0);
  });
});

describe('Idempotency-Key', () => {
  it('turns 20 concurrent identical requests into one order', async () => {
    const c = await customer();
    const a = await product(50);
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        order(c.token, [{ productId: a.id, quantity: 2 }], { 'idempotency-key': 'checkout-1' }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    expect(await stockOf(a.id)).toBe(48);
    expect((await http.get<{ total: number }>('/api/v1/orders', { token: c.token })).body.total).toBe(1);
  });

  it('replays a 409, refuses the key with another body, and scopes keys per user', async () => {
    const c = await customer();
    const other = await customer();
    const a = await product(1);
    const first = await order(c.token, [{ productId: a.id, quantity: 5 }], { 'idempotency-key': 'k-409' });
    expect(first.status).toBe(409);
    await http.post(`/api/v1/products/${a.id}/stock`, { delta: 10 }, { token: admin });
    const again = await order(c.token, [{ productId: a.id, quantity: 5 }], { 'idempotency-key': 'k-409' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'ORDER.OUT_OF_STOCK', orderId: first.body.orderId });
    const changed = await order(c.token, [{ productId: a.id, quantity: 1 }], { 'idempotency-key': 'k-409' });
    expect(changed.status).toBe(422);
    expect(changed.body.code).toBe('ORDER.IDEMPOTENCY_KEY_REUSED');
    // The same key from someone else is a different request.
    expect((await order(other.token, [{ productId: a.id, quantity: 5 }], { 'idempotency-key': 'k-409' })).status).toBe(
      201,
    );
  });

  it('refuses a malformed key', async () => {
    const c = await customer();
    const a = await product(1);
    const res = await order(c.token, [{ productId: a.id, quantity: 1 }], { 'idempotency-key': 'x'.repeat(300) });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'idempotency-key', message: 'Must be 1-255 visible ASCII characters' }]);
  });
});

describe('reading and cancelling', () => {
  it('hides other customers’ orders as 404 and lists only your own', async () => {
    const alice = await customer();
    const bob = await customer();
    const a = await product(10);
    const mine = (await order(alice.token, [{ productId: a.id, quantity: 1 }])).body;
    expect((await http.get(`/api/v1/orders/${mine.id}`, { token: alice.token })).status).toBe(200);
    const hidden = await http.get(`/api/v1/orders/${mine.id}`, { token: bob.token });
    const missing = await http.get('/api/v1/orders/00000000-0000-4000-8000-000000000000', { token: bob.token });
    expect(hidden.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(hidden.body.code).toBe(missing.body.code);
    expect((await http.get('/api/v1/orders/not-a-uuid', { token: bob.token })).status).toBe(404);
    expect((await http.post(`/api/v1/orders/${mine.id}/cancel`, undefined, { token: bob.token })).status).toBe(404);
    expect((await http.get<{ total: number }>('/api/v1/orders', { token: bob.token })).body.total).toBe(0);
    expect((await http.get(`/api/v1/orders?userId=${alice.id}`, { token: bob.token })).status).toBe(403);
    const forAdmin = await http.get<{ items: Order[]; total: number }>(
      `/api/v1/orders?userId=${alice.id}&status=confirmed`,
      { token: admin },
    );
    expect(forAdmin.body.items.map((o) => o.id)).toEqual([mine.id]);
    expect((await http.get('/api/v1/orders')).status).toBe(401);
  });

  it('cancels a confirmed order once, gives the stock back, and answers 409 after', async () => {
    const c = await customer();
    const a = await product(5);
    const placed = (await order(c.token, [{ productId: a.id, quantity: 3 }])).body;
    expect(await stockOf(a.id)).toBe(2);
    const cancelled = await http.post<Order>(`/api/v1/orders/${placed.id}/cancel`, undefined, { token: c.token });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('cancelled');
    expect(await stockOf(a.id)).toBe(5);
    const twice = await http.post(`/api/v1/orders/${placed.id}/cancel`, undefined, { token: c.token });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('ORDER.NOT_CANCELLABLE');
    expect(await stockOf(a.id)).toBe(5);
  });

  it('lets an admin cancel anyone’s order, and not a rejected one', async () => {
    const c = await customer();
    const a = await product(1);
    const placed = (await order(c.token, [{ productId: a.id, quantity: 1 }])).body;
    expect((await http.post(`/api/v1/orders/${placed.id}/cancel`, undefined, { token: admin })).status).toBe(200);
    const rejected = await order(c.token, [{ productId: a.id, quantity: 9 }]);
    expect(
      (await http.post(`/api/v1/orders/${rejected.body.orderId as string}/cancel`, undefined, { token: c.token }))
        .status,
    ).toBe(409);
  });
});
