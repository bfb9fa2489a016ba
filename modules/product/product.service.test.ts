import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { ProductService } from './product.service.ts';
import type { ProductRecord, ProductStore } from './stores/store.ts';

const ID = 'aaaaaaaaaaaaaaaaaaaaaaaa';

/** A store holding one product in memory, counting reads, whose reads can be held back. */
function fakeStore() {
  const record: ProductRecord = {
    id: ID,
    name: 'Kopi',
    description: '',
    price: 100,
    stock: 10,
    category: 'kopi',
    imageUrl: null,
    createdAt: new Date(0),
    updatedAt: new Date(0),
  };
  let hold: Promise<void> | undefined;
  const store = {
    reads: 0,
    holdReads(until: Promise<void>) {
      hold = until;
    },
    async get(id: string) {
      store.reads++;
      const snapshot = { ...record };
      if (hold) await hold;
      return id === ID ? snapshot : null;
    },
    async adjustStock(_id: string, delta: number) {
      record.stock += delta;
      return { ok: true as const, product: { ...record } };
    },
    async reserve(reservationId: string, lines: { productId: string; quantity: number }[]) {
      record.stock -= lines[0]!.quantity;
      return { reservationId, lines: [] };
    },
    manyReads: 0,
    async getMany(ids: string[]) {
      store.manyReads++;
      return ids.includes(ID) ? [{ ...record }] : [];
    },
    async update(_id: string, patch: { price?: number }) {
      Object.assign(record, patch);
      return { ...record };
    },
    lists: 0,
    async list() {
      store.lists++;
      return { items: [{ ...record }], total: 1 };
    },
    async release() {
      record.stock += 1;
      return true;
    },
  };
  return store;
}

const service = (store: ReturnType<typeof fakeStore>, cacheTtlMs: number) =>
  new ProductService(store as unknown as ProductStore, 'IDR', pino({ level: 'silent' }), { cacheTtlMs });

describe('ProductService cache', () => {
  it('answers repeated reads by id from memory', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    expect((await products.get(ID)).stock).toBe(10);
    expect((await products.get(ID)).stock).toBe(10);
    expect(store.reads).toBe(1);
  });

  it('drops a product at once when this process changes its stock, reserves or releases it', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    await products.get(ID);
    await products.adjustStock(ID, 5);
    expect((await products.get(ID)).stock).toBe(15);
    await products.reserve('r1', [{ productId: ID, quantity: 3 }]);
    expect((await products.get(ID)).stock).toBe(12);
    await products.release('r1');
    expect((await products.get(ID)).stock).toBe(13);
  });

  it('does not keep what a read found if a write happened while it was reading', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    let release!: () => void;
    store.holdReads(new Promise<void>((r) => (release = r)));
    const slow = products.get(ID); // reads stock 10, then waits
    await new Promise((r) => setImmediate(r));
    store.holdReads(Promise.resolve());
    await products.adjustStock(ID, -4);
    release();
    expect((await slow).stock).toBe(10);
    // The stale answer was not cached: the next read goes to the store and sees 6.
    expect((await products.get(ID)).stock).toBe(6);
  });

  it('answers a repeated catalogue page from memory until any product changes', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    const query = { skip: 0, limit: 20, sort: 'price' as const };
    expect((await products.list(query)).items[0]!.stock).toBe(10);
    await products.list(query);
    expect(store.lists).toBe(1);
    await products.reserve('r1', [{ productId: ID, quantity: 2 }]);
    expect((await products.list(query)).items[0]!.stock).toBe(8);
    expect(store.lists).toBe(2);
  });

  it('sends requests that miss together to the store once (no stampede when an entry expires under load)', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    let release!: () => void;
    store.holdReads(new Promise<void>((r) => (release = r)));
    const together = Array.from({ length: 50 }, () => products.get(ID));
    await new Promise((r) => setImmediate(r));
    release();
    expect((await Promise.all(together)).map((p) => p.stock)).toEqual(Array(50).fill(10));
    expect(store.reads).toBe(1);
  });

  it('never hands a read asked after a write the load that began before it', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    let release!: () => void;
    store.holdReads(new Promise<void>((r) => (release = r)));
    const before = products.get(ID); // reads stock 10, then waits
    await new Promise((r) => setImmediate(r));
    store.holdReads(Promise.resolve());
    await products.adjustStock(ID, 7);
    const after = products.get(ID);
    release();
    expect((await before).stock).toBe(10);
    expect((await after).stock).toBe(17);
    expect(store.reads).toBe(2);
  });

  it('keeps the order module’s prices across stock moves, and drops them when the product changes', async () => {
    const store = fakeStore();
    const products = service(store, 60_000);
    expect((await products.prices([ID]))[0]!.price).toBe(100);
    await products.reserve('r1', [{ productId: ID, quantity: 1 }]);
    await products.prices([ID]);
    expect(store.manyReads).toBe(1);
    await products.update(ID, { price: 250 });
    expect((await products.prices([ID]))[0]!.price).toBe(250);
    expect(store.manyReads).toBe(2);
  });

  it('reads the store every time with a TTL of 0', async () => {
    const store = fakeStore();
    const products = service(store, 0);
    await products.get(ID);
    await products.get(ID);
    expect(store.reads).toBe(2);
  });
});
