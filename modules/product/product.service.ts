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

export class ProductService {
  constructor(
    private readonly store: ProductStore,
    private readonly currency: string,
    private readonly logger: Logger,
  ) {}

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

  async list(query: ProductQuery): Promise<Page<ProductDto>> {
    const { items, total } = await this.store.list(query);
    return { items: items.map((p) => this.dto(p)), total, skip: query.skip, limit: query.limit };
  }

  /** Throws ProductNotFound for unknown and malformed ids alike. */
  async get(id: string): Promise<ProductDto> {
    const p = ID.test(id) ? await this.store.get(id) : null;
    if (!p) throw this.notFound(id);
    return this.dto(p);
  }

  async create(input: NewProduct): Promise<ProductDto> {
    const p = await this.store.create(input);
    this.logger.info({ productId: p.id }, 'product created');
    return this.dto(p);
  }

  async update(id: string, patch: ProductPatch): Promise<ProductDto> {
    const p = ID.test(id) ? await this.store.update(id, patch) : null;
    if (!p) throw this.notFound(id);
    return this.dto(p);
  }

  async remove(id: string): Promise<void> {
    if (!ID.test(id) || !(await this.store.remove(id))) throw this.notFound(id);
    this.logger.info({ productId: id }, 'product deleted');
  }

  /** Atomic restock or correction. Throws StockConflict when stock would go below zero. */
  async adjustStock(id: string, delta: number): Promise<ProductDto> {
    if (!ID.test(id)) throw this.notFound(id);
    const change = await this.store.adjustStock(id, delta);
    if (change.ok) return this.dto(change.product);
    if (change.reason === 'not_found') throw this.notFound(id);
    const current = await this.store.get(id);
    throw new StockConflict('Stock cannot go below zero', { productId: id, stock: current?.stock ?? 0, delta });
  }

  async snapshots(ids: string[]): Promise<ProductSnapshot[]> {
    const valid = [...new Set(ids.filter((id) => ID.test(id)))];
    if (!valid.length) return [];
    return (await this.store.getMany(valid)).map((p) => ({ id: p.id, name: p.name, price: p.price, currency: this.currency, stock: p.stock }));
  }

  reserve(reservationId: string, items: StockLine[]): Promise<Reservation> {
    return this.store.reserve(reservationId, items);
  }

  async release(reservationId: string): Promise<{ released: boolean }> {
    return { released: await this.store.release(reservationId) };
  }

  /** Loads the demo catalogue's products that are not there yet. Idempotent. */
  async seedDemo(): Promise<number> {
    const inserted = await this.store.insertMissing(DEMO_CATALOGUE);
    this.logger.info({ inserted, catalogue: DEMO_CATALOGUE.length }, 'demo catalogue seeded');
    return inserted;
  }

  count(): Promise<number> {
    return this.store.count();
  }
}
