import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, newUser, TEST_ADMIN } from '../../test/helpers/http.ts';

/**
 * The shop never loses its administration: not through an admin's own id
 * spelt another way, not through an admin whose rights were taken away a
 * moment ago, not through two admins demoting each other at once.
 */
let app: TestApp;
const http = api(() => app.url);

async function login(email: string, password: string): Promise<string> {
  const res = await http.post('/api/v1/users/login', { email, password });
  expect(res.status).toBe(200);
  return res.body.accessToken as string;
}

/** A new customer promoted to admin by `by`; returns their id and a token of theirs. */
async function newAdmin(by: string): Promise<{ id: string; token: string }> {
  const u = newUser();
  const id = (await http.post('/api/v1/users/register', u)).body.id as string;
  expect((await http.send('PATCH', `/api/v1/users/${id}`, { body: { role: 'admin' }, token: by })).status).toBe(200);
  return { id, token: await login(u.email, u.password) };
}

async function activeAdmins(token: string): Promise<string[]> {
  const res = await http.get<{ items: { id: string; role: string; isActive: boolean }[] }>('/api/v1/users?limit=100', {
    token,
  });
  return res.body.items.filter((u) => u.role === 'admin' && u.isActive).map((u) => u.id);
}

beforeAll(async () => {
  // The longest account check there is: whatever a stale answer could let through, it would here.
  app = await startTestApp({
    ADMIN_EMAIL: TEST_ADMIN.email,
    ADMIN_PASSWORD: TEST_ADMIN.password,
    ACCOUNT_CHECK_TTL_MS: '59000',
  });
});
afterAll(() => app?.close());

describe('the shop keeps an admin', () => {
  it('refuses an admin’s change of their own access in any spelling of their id', async () => {
    const admin = await login(TEST_ADMIN.email, TEST_ADMIN.password);
    const me = (await http.get('/api/v1/users/me', { token: admin })).body.id as string;
    for (const id of [me, me.toUpperCase(), me.replace(/[a-f]/, (c) => c.toUpperCase())]) {
      const res = await http.send('PATCH', `/api/v1/users/${id}`, { body: { isActive: false }, token: admin });
      expect(res.status, id).toBe(422);
    }
    expect((await http.get('/api/v1/users/me', { token: admin })).body).toMatchObject({
      role: 'admin',
      isActive: true,
    });
  });

  it('does not let an admin who was just demoted demote or deactivate the last active admin', async () => {
    const owner = await login(TEST_ADMIN.email, TEST_ADMIN.password);
    const ownerId = (await http.get('/api/v1/users/me', { token: owner })).body.id as string;
    const mallory = await newAdmin(owner);
    expect(
      (await http.send('PATCH', `/api/v1/users/${mallory.id}`, { body: { role: 'customer' }, token: owner })).status,
    ).toBe(200);
    for (const body of [{ role: 'customer' }, { isActive: false }]) {
      const res = await http.send('PATCH', `/api/v1/users/${ownerId}`, { body, token: mallory.token });
      expect(res.status, JSON.stringify(body)).not.toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    expect(await activeAdmins(owner)).toEqual([ownerId]);
  });

  it('keeps one admin when two admins demote each other at the same moment', async () => {
    const owner = await login(TEST_ADMIN.email, TEST_ADMIN.password);
    const ownerId = (await http.get('/api/v1/users/me', { token: owner })).body.id as string;
    const a = await newAdmin(owner);
    // Only a and the owner are active admins now (earlier tests demoted theirs).
    expect((await activeAdmins(owner)).sort()).toEqual([a.id, ownerId].sort());
    const [x, y] = await Promise.all([
      http.send('PATCH', `/api/v1/users/${a.id}`, { body: { isActive: false }, token: owner }),
      http.send('PATCH', `/api/v1/users/${ownerId}`, { body: { role: 'customer' }, token: a.token }),
    ]);
    expect([x.status, y.status].filter((s) => s === 200)).toHaveLength(1);
    const refused = x.status === 200 ? y : x;
    expect(refused.body).toMatchObject({ code: expect.stringMatching(/^(USER\.LAST_ADMIN|AUTH\.)/) });
    const survivor = x.status === 200 ? owner : a.token;
    expect(await activeAdmins(survivor)).toHaveLength(1);
  });
});

describe('ids at the boundary', () => {
  it('reads one id in any case as the same object, in paths, bodies and query filters', async () => {
    const admin = await login(TEST_ADMIN.email, TEST_ADMIN.password);
    const u = newUser();
    const id = (await http.post('/api/v1/users/register', u)).body.id as string;
    const token = await login(u.email, u.password);
    expect((await http.get(`/api/v1/users/${id.toUpperCase()}`, { token })).body).toMatchObject({ id });
    const product = await http.post(
      '/api/v1/products',
      { name: 'Kopi Kapital', price: 1000, stock: 5, category: 'uji' },
      { token: admin },
    );
    const productId = product.body.id as string;
    expect((await http.get(`/api/v1/products/${productId.toUpperCase()}`)).body).toMatchObject({ id: productId });
    const order = await http.post(
      '/api/v1/orders',
      { items: [{ productId: productId.toUpperCase(), quantity: 1 }] },
      { token },
    );
    expect(order.status).toBe(201);
    expect(order.body).toMatchObject({ items: [{ productId }] });
    const orderId = order.body.id as string;
    expect((await http.get(`/api/v1/orders/${orderId.toUpperCase()}`, { token })).body).toMatchObject({ id: orderId });
    const mine = await http.get<{ items: { id: string }[] }>(`/api/v1/orders?userId=${id.toUpperCase()}`, {
      token: admin,
    });
    expect(mine.body.items.map((o) => o.id)).toEqual([orderId]);
  });
});
