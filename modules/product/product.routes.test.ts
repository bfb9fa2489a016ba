import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, newUser } from '../../test/helpers/http.ts';
import { DEMO_CATALOGUE } from './seed/demo-catalogue.ts';

const ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };

let app: TestApp;
let admin: string;
let customer: string;
const http = api(() => app.url);

type Product = {
  id: string;
  name: string;
  price: number;
  stock: number;
  category: string;
  currency: string;
  imageUrl: string | null;
};
type Page = { items: Product[]; total: number; skip: number; limit: number };

beforeAll(async () => {
  app = await startTestApp({ ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password, SEED_DEMO: 'true' });
  admin = (await http.post('/api/v1/users/login', ADMIN)).body.accessToken as string;
  const u = newUser();
  await http.post('/api/v1/users/register', u);
  customer = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
    .accessToken as string;
});
afterAll(() => app?.close());

const create = async (body: Record<string, unknown>) => {
  const res = await http.post<Product>('/api/v1/products', body, { token: admin });
  expect(res.status).toBe(201);
  return res.body;
};

describe('the demo catalogue', () => {
  it('is loaded on an empty embedded database, with IDR prices in minor units', async () => {
    const page = await http.get<Page>('/api/v1/products?limit=100');
    expect(page.status).toBe(200);
    expect(page.body.total).toBe(DEMO_CATALOGUE.length);
    expect(DEMO_CATALOGUE.length).toBeGreaterThanOrEqual(24);
    expect(new Set(page.body.items.map((p) => p.category)).size).toBeGreaterThanOrEqual(5);
    const kopi = page.body.items.find((p) => p.name.startsWith('Kopi Gayo'))!;
    expect(kopi).toMatchObject({ price: 8_500_000, currency: 'IDR' });
  });

  it('is not loaded twice across a restart', async () => {
    await app.restart();
    expect((await http.get<Page>('/api/v1/products?limit=1')).body.total).toBe(DEMO_CATALOGUE.length);
  });
});

describe('GET /api/v1/products', () => {
  it('filters by category and name, sorts, and caps the page size', async () => {
    const res = await http.get<Page>('/api/v1/products?category=elektronik&sort=-price&limit=3');
    expect(res.body.items).toHaveLength(3);
    expect(res.body.items.every((p) => p.category === 'elektronik')).toBe(true);
    const prices = res.body.items.map((p) => p.price);
    expect(prices).toEqual([...prices].sort((a, b) => b - a));
    const q = await http.get<Page>('/api/v1/products?q=KOPI');
    expect(q.body.items.map((p) => p.name)).toContain('Kopi Gayo Arabika 250 g');
    expect((await http.get('/api/v1/products?limit=101')).status).toBe(422);
  });

  it('refuses operator injection, arrays, unknown parameters and unknown sorts with 422', async () => {
    for (const q of ['category[$ne]=x', 'category=a&category=b', 'sort=price;drop', 'colour=red', 'q=']) {
      const res = await http.get(`/api/v1/products?${q}`);
      expect({ q, status: res.status }).toEqual({ q, status: 422 });
    }
  });
});

describe('GET /api/v1/products/:id', () => {
  it('answers 404 for unknown and malformed ids', async () => {
    expect((await http.get('/api/v1/products/0123456789abcdef01234567')).status).toBe(404);
    const bad = await http.get('/api/v1/products/not-an-id');
    expect(bad.status).toBe(404);
    expect(bad.body.code).toBe('PRODUCT.NOT_FOUND');
  });
});

describe('admin writes', () => {
  it('creates, changes and deletes a product; customers get 403 and strangers 401', async () => {
    const body = {
      name: 'Batik Tulis Solo',
      description: 'Kain batik tulis',
      price: 75_000_000,
      stock: 3,
      category: 'Fashion',
      imageUrl: 'https://img.example/batik.jpg',
    };
    expect((await http.post('/api/v1/products', body, { token: customer })).status).toBe(403);
    expect((await http.post('/api/v1/products', body)).status).toBe(401);
    const p = await create(body);
    expect(p).toMatchObject({
      name: 'Batik Tulis Solo',
      price: 75_000_000,
      stock: 3,
      category: 'fashion',
      currency: 'IDR',
    });

    const patched = await http.send<Product>('PATCH', `/api/v1/products/${p.id}`, {
      body: { price: 70_000_000, imageUrl: null },
      token: admin,
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ price: 70_000_000, imageUrl: null, stock: 3 });

    const del = await http.send('DELETE', `/api/v1/products/${p.id}`, { token: admin });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    expect((await http.get(`/api/v1/products/${p.id}`)).status).toBe(404);
    expect((await http.send('DELETE', `/api/v1/products/${p.id}`, { token: admin })).status).toBe(404);
  });

  it('validates every field and refuses stock changes through PATCH', async () => {
    const res = await http.post(
      '/api/v1/products',
      { name: '', price: 10.5, stock: -1, category: 'Bad Category!', imageUrl: 'ftp://x', colour: 'red' },
      { token: admin },
    );
    expect(res.status).toBe(422);
    expect((res.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual([
      'category',
      'colour',
      'imageUrl',
      'name',
      'price',
      'stock',
    ]);
    const p = await create({ name: 'Gelas', price: 100, category: 'rumah' });
    const patch = await http.send('PATCH', `/api/v1/products/${p.id}`, { body: { stock: 100 }, token: admin });
    expect(patch.status).toBe(422);
    expect(patch.body.errors).toContainEqual({ path: 'stock', message: 'Unknown field' });
    const empty = await http.send('PATCH', `/api/v1/products/${p.id}`, { body: {}, token: admin });
    expect(empty.status).toBe(422);
    expect(empty.body.errors).toEqual([{ path: 'body', message: 'Give at least one field to change' }]);
    expect((await http.get<Product>(`/api/v1/products/${p.id}`)).body.stock).toBe(0);
  });

  it('adjusts stock atomically and answers 409 rather than going below zero', async () => {
    const p = await create({ name: 'Sapu', price: 100, stock: 2, category: 'rumah' });
    const up = await http.post<Product>(`/api/v1/products/${p.id}/stock`, { delta: 5 }, { token: admin });
    expect(up.body.stock).toBe(7);
    const down = await http.post(`/api/v1/products/${p.id}/stock`, { delta: -8 }, { token: admin });
    expect(down.status).toBe(409);
    expect(down.body).toMatchObject({ code: 'PRODUCT.STOCK_CONFLICT', stock: 7 });
    expect((await http.post(`/api/v1/products/${p.id}/stock`, { delta: 0 }, { token: admin })).status).toBe(422);
    expect((await http.post(`/api/v1/products/${p.id}/stock`, { delta: 1 }, { token: customer })).status).toBe(403);
    expect((await http.get<Product>(`/api/v1/products/${p.id}`)).body.stock).toBe(7);
  });

  it('answers 422 with the bound, not 500, when stock would pass what a product can hold, and keeps the stock', async () => {
    const p = await create({ name: 'Beras', price: 100, stock: 0, category: 'rumah' });
    for (let i = 0; i < 2; i++)
      expect((await http.post(`/api/v1/products/${p.id}/stock`, { delta: 1e9 }, { token: admin })).status).toBe(200);
    const third = await http.post(`/api/v1/products/${p.id}/stock`, { delta: 1e9 }, { token: admin });
    expect(third.status).toBe(422);
    expect(third.body.errors).toEqual([
      { path: 'delta', message: 'At most 147483647 can be added: stock cannot exceed 2147483647' },
    ]);
    expect((await http.get<Product>(`/api/v1/products/${p.id}`)).body.stock).toBe(2e9);
    expect(
      (await http.post<Product>(`/api/v1/products/${p.id}/stock`, { delta: 147_483_647 }, { token: admin })).body.stock,
    ).toBe(2_147_483_647);
  });
});
