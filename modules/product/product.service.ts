import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { Page } from '../../src/kit/pagination.ts';
import { ProductNotFound, type ProductSnapshot, type Reservation, type StockLine } from './contract.ts';
import { StockConflict } from './product.errors.ts';
import { DEMO_CATALOGUE } from './seed/demo-catalogue.ts';
import type { NewProduct, ProductPatch, ProductQuery, ProductRecord, ProductStore } from './stores/store.ts';

export interface ProductDto {
  id: string;
  name: string;
  description: string;
  price: number;
  currency: string;
  stock: number;
  category: string;
  imageUrl: string | null;
  createdAt: string;
  updatedAt: string;
}

const ID = /^[0-9a-f]{24}$/;

export interface ProductServiceOptions {
  /** How long a product read by id may be served from memory; 0 reads the store every time. */
  cacheTtlMs: number;
  /** Products kept in memory at most. */
  cacheMax?: number;
}

export class ProductService {
  /**
   * Products by id, for the hottest read of the shop. Every write made here
   * drops what it touches at once, so this process never serves a product
   * older than its own last write; other processes hosting the product
   * module (replicas) may serve one up to the TTL old. Reservations read
   * stock in the store, never here.
   */
  private readonly cache: LRUCache<string, ProductDto> | undefined;
  /** Catalogue pages by query, same TTL; any write in this process drops them all (a stock change can move a product on any page). */
  private readonly pages: LRUCache<string, Page<ProductDto>> | undefined;
  /** Bumped by every write: a read that started before it does not fill the cache with what it found. */
  private generation = 0;
  /**
   * Loads in progress by generation and key: requests that miss together
   * share one query instead of all going to the store when an entry expires
   * under load (that stampede was the read p99). A write starts a new
   * generation, so nobody who asks after a write gets a load begun before it.
   */
  private readonly loading = new Map<string, Promise<unknown>>();

  constructor(
    private readonly store: ProductStore,
    private readonly currency: string,
    private readonly logger: Logger,
    opts: ProductServiceOptions = { cacheTtlMs: 0 },
  ) {
    if (opts.cacheTtlMs > 0) {
      this.cache = new LRUCache({ max: opts.cacheMax ?? 10_000, ttl: opts.cacheTtlMs });
      this.pages = new LRUCache({ max: 1000, ttl: opts.cacheTtlMs });
    }
  }

  private forget(ids?: string[]): void {
    this.generation++;
    this.pages?.clear();
    if (!this.cache) return;
    if (ids) for (const id of ids) this.cache.delete(id);
    else this.cache.clear();
  }

  /** From `cache`, else from `load` — shared with everyone missing the same key meanwhile — then cached unless a write intervened. */
  private cached<T extends object>(cache: LRUCache<string, T> | undefined, kind: 'id' | 'page', key: string, load: () => Promise<T>): Promise<T> {
    const hit = cache?.get(key);
    if (hit) return Promise.resolve(hit);
    if (!cache) return load();
    const generation = this.generation;
    const slot = `${generation}:${kind}:${key}`;
    const pending = this.loading.get(slot) as Promise<T> | undefined;
    if (pending) return pending;
    const loaded = load()
      .then((value) => {
        if (generation === this.generation) cache.set(key, value);
        return value;
      })
      .finally(() => this.loading.delete(slot));
    this.loading.set(slot, loaded);
    return loaded;
  }

  private dto(p: ProductRecord): ProductDto {
    return {
      id: p.id,
      name: p.name,
      description: p.description,
      price: p.price,
      currency: this.currency,
      stock: p.stock,
      category: p.category,
      imageUrl: p.imageUrl,
      createdAt: p.createdAt.toISOString(),
      updatedAt: p.updatedAt.toISOString(),
    };
  }

  private notFound(id: string): ProductNotFound {
    return new ProductNotFound(`No product with id ${id}`, { ids: [id] });
  }

  list(query: ProductQuery): Promise<Page<ProductDto>> {
    return this.cached(this.pages, 'page', JSON.stringify(query), async () => {
      const { items, total } = await this.store.list(query);
      return { items: items.map((p) => this.dto(p)), total, skip: query.skip, limit: query.limit };
    });
  }

  /** Throws ProductNotFound for unknown and malformed ids alike. */
  async get(id: string): Promise<ProductDto> {
    if (!ID.test(id)) throw this.notFound(id);
    return this.cached(this.cache, 'id', id, async () => {
      const p = await this.store.get(id);
      if (!p) throw this.notFound(id);
      return this.dto(p);
    });
  }

  async create(input: NewProduct): Promise<ProductDto> {
    const p = await this.store.create(input);
    this.forget([p.id]);
    this.logger.info({ productId: p.id }, 'product created');
    return this.dto(p);
  }

  async update(id: string, patch: ProductPatch): Promise<ProductDto> {
    this.forget([id]);
    const p = ID.test(id) ? await this.store.update(id, patch) : null;
    this.forget([id]);
    if (!p) throw this.notFound(id);
    return this.dto(p);
  }

  async remove(id: string): Promise<void> {
    const removed = ID.test(id) && (await this.store.remove(id));
    this.forget([id]);
    if (!removed) throw this.notFound(id);
    this.logger.info({ productId: id }, 'product deleted');
  }

  /** Atomic restock or correction. Throws StockConflict when stock would go below zero. */
  async adjustStock(id: string, delta: number): Promise<ProductDto> {
    if (!ID.test(id)) throw this.notFound(id);
    const change = await this.store.adjustStock(id, delta);
    this.forget([id]);
    if (change.ok) return this.dto(change.product);
    if (change.reason === 'not_found') throw this.notFound(id);
    const current = await this.store.get(id);
    throw new StockConflict('Stock cannot go below zero', { productId: id, stock: current?.stock ?? 0, delta });
  }

  /** Names, prices and stock for the order module (informational: the reservation takes the real figures). Served from the cache where it can. */
  async snapshots(ids: string[]): Promise<ProductSnapshot[]> {
    const valid = [...new Set(ids.filter((id) => ID.test(id)))];
    const found: ProductDto[] = [];
    const missing: string[] = [];
    for (const id of valid) {
      const cached = this.cache?.get(id);
      if (cached) found.push(cached);
      else missing.push(id);
    }
    if (missing.length) {
      const generation = this.generation;
      for (const p of await this.store.getMany(missing)) {
        const dto = this.dto(p);
        found.push(dto);
        if (this.cache && generation === this.generation) this.cache.set(p.id, dto);
      }
    }
    return found.map((p) => ({ id: p.id, name: p.name, price: p.price, currency: this.currency, stock: p.stock }));
  }

  async reserve(reservationId: string, items: StockLine[]): Promise<Reservation> {
    try {
      return await this.store.reserve(reservationId, items);
    } finally {
      this.forget(items.map((i) => i.productId));
    }
  }

  async release(reservationId: string): Promise<{ released: boolean }> {
    try {
      return { released: await this.store.release(reservationId) };
    } finally {
      // Which products a reservation held is the store's to know: drop everything (releases are rare).
      this.forget();
    }
  }

  /** Loads the demo catalogue's products that are not there yet. Idempotent. */
  async seedDemo(): Promise<number> {
    const inserted = await this.store.insertMissing(DEMO_CATALOGUE);
    this.forget();
    this.logger.info({ inserted, catalogue: DEMO_CATALOGUE.length }, 'demo catalogue seeded');
    return inserted;
  }

  count(): Promise<number> {
    return this.store.count();
  }
}
