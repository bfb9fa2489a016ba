import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokoClient } from '../client/index.ts';
import { apiDocument } from '../src/api-document.ts';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { TEST_ADMIN, TEST_ADMIN_ENV, newUser } from './helpers/http.ts';

describe('the typed client', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ ...TEST_ADMIN_ENV, SEED_DEMO: 'true' });
  }, 60_000);
  afterAll(() => app?.close());

  it('is generated from the very document a running toko serves', async () => {
    const served = (await (await fetch(`${app.url}/openapi.json`)).json()) as { info: { version: string } };
    expect(served).toEqual(apiDocument(served.info.version));
  });

  it('drives the whole shop: sign up, log in, browse, order, see it and its notification, cancel, and reads a typed problem', async () => {
    let token: string | undefined;
    const toko = createTokoClient(app.url, { token: () => token });

    const customer = newUser();
    const registered = await toko.POST('/api/v1/users/register', { body: customer });
    expect(registered.response.status).toBe(201);
    expect(registered.data!.email).toBe(customer.email);

    const taken = await toko.POST('/api/v1/users/register', { body: { ...newUser(), email: customer.email } });
    expect(taken.response.status).toBe(409);
    // The problem document is typed by its code: `field` is declared for USER.ALREADY_EXISTS.
    if (taken.error?.code !== 'USER.ALREADY_EXISTS')
      expect.fail(`expected USER.ALREADY_EXISTS, got ${JSON.stringify(taken.error)}`);
    expect(taken.error.field).toBe('email');

    const admin = await toko.POST('/api/v1/users/login', { body: TEST_ADMIN });
    token = admin.data!.accessToken;
    const product = await toko.POST('/api/v1/products', {
      body: {
        name: 'Kopi Toraja 200 g',
        description: 'Dari Tana Toraja.',
        price: 95_000,
        stock: 3,
        category: 'makanan-minuman',
        imageUrl: null,
      },
    });
    expect(product.response.status).toBe(201);
    const productId = product.data!.id;

    const login = await toko.POST('/api/v1/users/login', {
      body: { email: customer.email, password: customer.password },
    });
    token = login.data!.accessToken;
    expect((await toko.GET('/api/v1/users/me')).data!.id).toBe(registered.data!.id);

    const page = await toko.GET('/api/v1/products', {
      params: { query: { category: 'makanan-minuman', sort: 'price', limit: 100 } },
    });
    expect(page.data!.items.some((p) => p.id === productId)).toBe(true);
    expect((await toko.GET('/api/v1/products/{id}', { params: { path: { id: productId } } })).data!.stock).toBe(3);

    const order = await toko.POST('/api/v1/orders', {
      body: { items: [{ productId, quantity: 2 }] },
      params: { header: { 'idempotency-key': `client-${productId}` } },
    });
    expect(order.response.status).toBe(201);
    expect(order.data!).toMatchObject({ status: 'confirmed', total: 190_000 });
    const again = await toko.POST('/api/v1/orders', {
      body: { items: [{ productId, quantity: 2 }] },
      params: { header: { 'idempotency-key': `client-${productId}` } },
    });
    expect(again.data!.id).toBe(order.data!.id);

    const short = await toko.POST('/api/v1/orders', { body: { items: [{ productId, quantity: 5 }] } });
    expect(short.response.status).toBe(409);
    if (short.error?.code !== 'ORDER.OUT_OF_STOCK')
      expect.fail(`expected ORDER.OUT_OF_STOCK, got ${JSON.stringify(short.error)}`);
    expect(short.error.items).toEqual([{ productId, requested: 5, available: 1 }]);

    expect((await toko.GET('/api/v1/orders/{id}', { params: { path: { id: order.data!.id } } })).data!.status).toBe(
      'confirmed',
    );
    const mine = await toko.GET('/api/v1/orders', { params: { query: { limit: 10 } } });
    expect(mine.data!.items.map((o) => o.id)).toContain(order.data!.id);

    const cancelled = await toko.POST('/api/v1/orders/{id}/cancel', { params: { path: { id: order.data!.id } } });
    expect(cancelled.data!.status).toBe('cancelled');
    const notifications = await (async () => {
      for (let i = 0; i < 100; i++) {
        const n = await toko.GET('/api/v1/notifications', { params: { query: { limit: 10 } } });
        if (n.data!.items.length >= 3) return n.data!.items;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('welcome, confirmation and cancellation were not all notified');
    })();
    expect(notifications.map((n) => n.template).sort()).toEqual(['order-cancelled', 'order-confirmed', 'welcome']);
  });
});
