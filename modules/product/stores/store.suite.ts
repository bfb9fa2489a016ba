import { describe, expect, it } from 'vitest';
import { OutOfStock, ProductNotFound, ReservationClosed } from '../contract.ts';
import { MAX_STOCK, type NewProduct, type ProductStore } from './store.ts';

/**
 * The behaviour every ProductStore promises, run against each implementation
 * (see store.test.ts). `store()` returns the store under test; each test
 * makes its own products, so tests never depend on each other's rows.
 */
export function productStoreSuite(store: () => ProductStore) {
  let n = 0;
  const tag = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
  const product = (over: Partial<NewProduct> = {}): NewProduct => ({
    name: `Barang ${tag} ${++n}`,
    description: 'Uji',
    price: 1_500_000,
    stock: 10,
    category: `cat-${tag}`,
    imageUrl: null,
    ...over,
  });

  describe('catalogue', () => {
    it('creates products with 24-hex ids and reads them back', async () => {
      const p = await store().create(product({ price: 2_500_000, imageUrl: 'https://img.example/a.jpg' }));
      expect(p.id).toMatch(/^[0-9a-f]{24}$/);
      expect(await store().get(p.id)).toMatchObject({
        id: p.id,
        price: 2_500_000,
        stock: 10,
        imageUrl: 'https://img.example/a.jpg',
      });
      expect(await store().get('0123456789abcdef01234567')).toBeNull();
      expect(await store().get('not-an-id')).toBeNull();
    });

    it('filters by category, matches names case-insensitively and literally, sorts and pages', async () => {
      const category = `list-${tag}`;
      await store().create(product({ category, name: `Kopi Toraja ${tag}`, price: 300 }));
      await store().create(product({ category, name: `KOPI Gayo ${tag}`, price: 100 }));
      await store().create(product({ category, name: `Teh 100%_murni ${tag}`, price: 200 }));
      await store().create(product({ name: `Kopi elsewhere ${tag}` }));

      const all = await store().list({ skip: 0, limit: 10, category, sort: 'price' });
      expect(all.total).toBe(3);
      expect(all.items.map((p) => p.price)).toEqual([100, 200, 300]);
      const desc = await store().list({ skip: 0, limit: 10, category, sort: '-price' });
      expect(desc.items.map((p) => p.price)).toEqual([300, 200, 100]);

      const kopi = await store().list({ skip: 0, limit: 10, category, q: 'kopi', sort: 'name' });
      expect(kopi.items.map((p) => p.name)).toEqual([`KOPI Gayo ${tag}`, `Kopi Toraja ${tag}`]);
      // % and _ are matched as themselves, not as wildcards.
      expect((await store().list({ skip: 0, limit: 10, category, q: '100%_', sort: 'name' })).total).toBe(1);
      expect((await store().list({ skip: 0, limit: 10, category, q: '%', sort: 'name' })).total).toBe(1);
      expect((await store().list({ skip: 0, limit: 10, category, q: '.*', sort: 'name' })).total).toBe(0);

      const page = await store().list({ skip: 1, limit: 1, category, sort: 'price' });
      expect(page).toMatchObject({ total: 3, items: [expect.objectContaining({ price: 200 })] });
    });

    it('updates fields without touching stock, and removes', async () => {
      const p = await store().create(product());
      const updated = await store().update(p.id, { name: 'Nama baru', price: 999 });
      expect(updated).toMatchObject({ name: 'Nama baru', price: 999, stock: 10 });
      expect(await store().update('0123456789abcdef01234567', { name: 'x' })).toBeNull();
      expect(await store().remove(p.id)).toBe(true);
      expect(await store().remove(p.id)).toBe(false);
      expect(await store().get(p.id)).toBeNull();
    });

    it('inserts the missing products of a fixed list once', async () => {
      const id = `ab${tag
        .padEnd(22, '0')
        .replace(/[^0-9a-f]/g, 'c')
        .slice(0, 22)}`;
      const list = [{ ...product(), id }];
      expect(await store().insertMissing(list)).toBe(1);
      expect(await store().insertMissing(list)).toBe(0);
      expect(await store().get(id)).toMatchObject({ id, stock: 10 });
    });
  });

  describe('stock', () => {
    it('adjusts atomically and never below zero, also under concurrency', async () => {
      const p = await store().create(product({ stock: 10 }));
      const results = await Promise.all(Array.from({ length: 25 }, () => store().adjustStock(p.id, -1)));
      expect(results.filter((r) => r.ok)).toHaveLength(10);
      expect(results.filter((r) => !r.ok && r.reason === 'insufficient')).toHaveLength(15);
      expect((await store().get(p.id))!.stock).toBe(0);
      expect(await store().adjustStock(p.id, 5)).toMatchObject({ ok: true, product: { stock: 5 } });
      expect(await store().adjustStock('0123456789abcdef01234567', 1)).toEqual({ ok: false, reason: 'not_found' });
    });

    it('never holds more than MAX_STOCK, whichever store', async () => {
      const p = await store().create(product({ stock: 10 }));
      expect(await store().adjustStock(p.id, MAX_STOCK)).toEqual({ ok: false, reason: 'too_much' });
      expect(await store().adjustStock(p.id, MAX_STOCK - 10)).toMatchObject({
        ok: true,
        product: { stock: MAX_STOCK },
      });
      expect(await store().adjustStock(p.id, 1)).toEqual({ ok: false, reason: 'too_much' });
      expect((await store().get(p.id))!.stock).toBe(MAX_STOCK);
    });

    it('reserves every line or none, naming each short product', async () => {
      const a = await store().create(product({ stock: 5, price: 1000 }));
      const b = await store().create(product({ stock: 1 }));
      const err = await store()
        .reserve(`r-short-${tag}`, [
          { productId: a.id, quantity: 2 },
          { productId: b.id, quantity: 3 },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OutOfStock);
      expect((err as OutOfStock).extras.items).toEqual([{ productId: b.id, requested: 3, available: 1 }]);
      expect((await store().get(a.id))!.stock).toBe(5);
      expect((await store().get(b.id))!.stock).toBe(1);
      // A failed reservation does not use up its id.
      const ok = await store().reserve(`r-short-${tag}`, [{ productId: a.id, quantity: 2 }]);
      expect(ok.lines).toEqual([
        { productId: a.id, quantity: 2, name: a.name, unitPrice: 1000, currency: expect.any(String) },
      ]);
    });

    it('refuses unknown products without taking anything', async () => {
      const a = await store().create(product({ stock: 5 }));
      const err = await store()
        .reserve(`r-unknown-${tag}`, [
          { productId: a.id, quantity: 1 },
          { productId: '0123456789abcdef01234567', quantity: 1 },
        ])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProductNotFound);
      expect((err as ProductNotFound).extras.ids).toEqual(['0123456789abcdef01234567']);
      expect((await store().get(a.id))!.stock).toBe(5);
    });

    it('is idempotent per reservation id, and merges lines of one product', async () => {
      const a = await store().create(product({ stock: 10 }));
      const lines = [
        { productId: a.id, quantity: 2 },
        { productId: a.id, quantity: 1 },
      ];
      const first = await store().reserve(`r-idem-${tag}`, lines);
      const again = await store().reserve(`r-idem-${tag}`, lines);
      expect(again).toEqual(first);
      expect(first.lines).toEqual([expect.objectContaining({ productId: a.id, quantity: 3 })]);
      expect((await store().get(a.id))!.stock).toBe(7);
    });

    it('never oversells: 50 concurrent reservations of a product with stock 10', async () => {
      const a = await store().create(product({ stock: 10 }));
      const results = await Promise.allSettled(
        Array.from({ length: 50 }, (_, i) => store().reserve(`r-race-${tag}-${i}`, [{ productId: a.id, quantity: 1 }])),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected).toHaveLength(40);
      expect(rejected.every((r) => r.reason instanceof OutOfStock)).toBe(true);
      expect((await store().get(a.id))!.stock).toBe(0);
    });

    it('keeps no partial reservation when several products race', async () => {
      const a = await store().create(product({ stock: 10 }));
      const b = await store().create(product({ stock: 4 }));
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          store().reserve(`r-multi-${tag}-${i}`, [
            { productId: a.id, quantity: 1 },
            { productId: b.id, quantity: 1 },
          ]),
        ),
      );
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(4);
      expect((await store().get(a.id))!.stock).toBe(6);
      expect((await store().get(b.id))!.stock).toBe(0);
    });

    it('releases exactly what a reservation took, once', async () => {
      const a = await store().create(product({ stock: 10 }));
      const b = await store().create(product({ stock: 10 }));
      await store().reserve(`r-rel-${tag}`, [
        { productId: a.id, quantity: 4 },
        { productId: b.id, quantity: 1 },
      ]);
      await store().adjustStock(a.id, 100);
      expect(await store().release(`r-rel-${tag}`)).toBe(true);
      expect(await store().release(`r-rel-${tag}`)).toBe(false);
      expect((await store().get(a.id))!.stock).toBe(110);
      expect((await store().get(b.id))!.stock).toBe(10);
      await expect(store().reserve(`r-rel-${tag}`, [{ productId: a.id, quantity: 1 }])).rejects.toBeInstanceOf(
        ReservationClosed,
      );
    });

    it('closes a reservation id released before it reserved, so a late reserve takes nothing', async () => {
      const a = await store().create(product({ stock: 3 }));
      expect(await store().release(`r-late-${tag}`)).toBe(false);
      await expect(store().reserve(`r-late-${tag}`, [{ productId: a.id, quantity: 1 }])).rejects.toBeInstanceOf(
        ReservationClosed,
      );
      expect((await store().get(a.id))!.stock).toBe(3);
    });
  });
}
