import type { Logger } from 'pino';
import type { Page } from '../../kit/pagination.ts';
import { ValidationFailed } from '../../kit/errors.ts';
import { ReadCache } from '../../kit/read-cache.ts';
import type { Invalidations } from '../../kit/shared.ts';
import {
  ProductNotFound,
  type ProductDto,
  type ProductPrice,
  type ProductSnapshot,
  type Reservation,
  type StockLine,
} from './contract.ts';
import { StockConflict } from './product.errors.ts';
import { DEMO_CATALOGUE } from './seed/demo-catalogue.ts';
import {
  MAX_STOCK,
  type NewProduct,
  type ProductPatch,
  type ProductQuery,
  type ProductRecord,
  type ProductStore,
} from './stores/store.ts';

const ID = /^[0-9a-f]{24}$/;

export interface ProductServiceOptions {
  /** How long a product read by id may be served from memory; 0 reads the store every time. */
  cacheTtlMs: number;
  /** Products kept in memory at most. */
  cacheMax?: number;
  /** Drops shared with the other replicas of the product module (kept in process when not given). */
  invalidations?: Invalidations;
}

export class ProductService {
  /**
   * Products by id, for the hottest read of the shop. Every write made here
   * drops what it touches at once, so this process never serves a product
   * older than its own last write; other replicas of the product module
   * drop it when the drop reaches them over Redis (milliseconds), or at the
   * TTL when it does not. Reservations read
   * stock in the store, never here.
   */
  private readonly byId: ReadCache<ProductDto>;
  /** Catalogue pages by query, same TTL; any write in this process drops them all (a stock change can move a product on any page). */
  private readonly pages: ReadCache<Page<ProductDto>>;
  /**
   * What the order module asks for each order (name and price), dropped by
   * changes to a product but not by stock moving: every order reserves, and
   * would otherwise empty this for the next.
   */
  private readonly info: ReadCache<ProductPrice>;

  constructor(
    private readonly store: ProductStore,
    private readonly currency: string,
    private readonly logger: Logger,
    opts: ProductServiceOptions = { cacheTtlMs: 0 },
  ) {
    const max = opts.cacheMax ?? 10_000;
    const shared = (topic: string) =>
      opts.invalidations ? { shared: { invalidations: opts.invalidations, topic } } : {};
    this.byId = new ReadCache({ ttlMs: opts.cacheTtlMs, max, ...shared('product.byId') });
    this.pages = new ReadCache({ ttlMs: opts.cacheTtlMs, max: 1000, ...shared('product.pages') });
    this.info = new ReadCache({ ttlMs: opts.cacheTtlMs, max, ...shared('product.info') });
  }

  /** After a stock change: the products and every page, here at once (before this returns) and on every other replica (when it settles; never rejects). */
  private async stockMoved(ids?: string[]): Promise<void> {
    await Promise.all([this.byId.forget(ids), this.pages.forget()]);
  }

  /** After a change to what a product is (name, price, existence): that, too. */
  private async changed(ids?: string[]): Promise<void> {
    await Promise.all([this.stockMoved(ids), this.info.forget(ids)]);
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
    return this.pages.get(JSON.stringify(query), async () => {
      const { items, total } = await this.store.list(query);
      return { items: items.map((p) => this.dto(p)), total, skip: query.skip, limit: query.limit };
    });
  }

  /** Throws ProductNotFound for unknown and malformed ids alike. */
  async get(id: string): Promise<ProductDto> {
    if (!ID.test(id)) throw this.notFound(id);
    return this.byId.get(id, async () => {
      const p = await this.store.get(id);
      if (!p) throw this.notFound(id);
      return this.dto(p);
    });
  }

  async create(input: NewProduct): Promise<ProductDto> {
    const p = await this.store.create(input);
    await this.changed([p.id]);
    this.logger.info({ productId: p.id }, 'product created');
    return this.dto(p);
  }

  async update(id: string, patch: ProductPatch): Promise<ProductDto> {
    await this.changed([id]);
    const p = ID.test(id) ? await this.store.update(id, patch) : null;
    await this.changed([id]);
    if (!p) throw this.notFound(id);
    return this.dto(p);
  }

  async remove(id: string): Promise<void> {
    const removed = ID.test(id) && (await this.store.remove(id));
    await this.changed([id]);
    if (!removed) throw this.notFound(id);
    this.logger.info({ productId: id }, 'product deleted');
  }

  /** Atomic restock or correction. Throws StockConflict when stock would go below zero. */
  async adjustStock(id: string, delta: number): Promise<ProductDto> {
    if (!ID.test(id)) throw this.notFound(id);
    const change = await this.store.adjustStock(id, delta);
    await this.stockMoved([id]);
    if (change.ok) return this.dto(change.product);
    if (change.reason === 'not_found') throw this.notFound(id);
    const current = await this.store.get(id);
    if (change.reason === 'too_much') {
      const room = MAX_STOCK - (current?.stock ?? 0);
      throw new ValidationFailed(`Stock cannot exceed ${MAX_STOCK}`, {
        errors: [{ path: 'delta', message: `At most ${room} can be added: stock cannot exceed ${MAX_STOCK}` }],
      });
    }
    throw new StockConflict('Stock cannot go below zero', { productId: id, stock: current?.stock ?? 0, delta });
  }

  /** Names, prices and stock as they are now, for other modules; served from the by-id cache where it can. */
  async snapshots(ids: string[]): Promise<ProductSnapshot[]> {
    const valid = [...new Set(ids.filter((id) => ID.test(id)))];
    const found: ProductDto[] = [];
    const missing: string[] = [];
    for (const id of valid) {
      const cached = this.byId.peek(id);
      if (cached) found.push(cached);
      else missing.push(id);
    }
    if (missing.length) {
      const since = this.byId.generationNow();
      for (const p of await this.store.getMany(missing)) {
        const dto = this.dto(p);
        found.push(dto);
        this.byId.fill(p.id, dto, since);
      }
    }
    return found.map((p) => ({ id: p.id, name: p.name, price: p.price, currency: this.currency, stock: p.stock }));
  }

  /** Names and prices (no stock) for the order module, kept across stock moves: every order reserves, and would otherwise empty the by-id cache for the next. */
  async prices(ids: string[]): Promise<ProductPrice[]> {
    const valid = [...new Set(ids.filter((id) => ID.test(id)))];
    const found: ProductPrice[] = [];
    const missing: string[] = [];
    for (const id of valid) {
      const known = this.info.peek(id);
      if (known) found.push(known);
      else missing.push(id);
    }
    if (missing.length) {
      const since = this.info.generationNow();
      for (const p of await this.store.getMany(missing)) {
        const price = { id: p.id, name: p.name, price: p.price, currency: this.currency };
        found.push(price);
        this.info.fill(p.id, price, since);
      }
    }
    return found;
  }

  async reserve(reservationId: string, items: StockLine[]): Promise<Reservation> {
    try {
      return await this.store.reserve(reservationId, items);
    } finally {
      // Dropped here before answering; the other replicas' drop is not waited for on the order path (stock they
      // show may lag by the publish, never past the TTL; reservations read stock in the store, never a cache).
      void this.stockMoved(items.map((i) => i.productId));
    }
  }

  async release(reservationId: string): Promise<{ released: boolean }> {
    try {
      return { released: await this.store.release(reservationId) };
    } finally {
      // Which products a reservation held is the store's to know: drop everything (releases are rare).
      void this.stockMoved();
    }
  }

  /** Loads the demo catalogue's products that are not there yet. Idempotent. */
  async seedDemo(): Promise<number> {
    const inserted = await this.store.insertMissing(DEMO_CATALOGUE);
    await this.changed();
    this.logger.info({ inserted, catalogue: DEMO_CATALOGUE.length }, 'demo catalogue seeded');
    return inserted;
  }

  count(): Promise<number> {
    return this.store.count();
  }
}
