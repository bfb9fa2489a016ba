import { OutOfStock, ProductNotFound, type Reservation, type StockLine } from '../contract.ts';

export interface ProductRecord {
  id: string;
  name: string;
  description: string;
  /** Integer minor units of the shop currency. */
  price: number;
  stock: number;
  category: string;
  imageUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export type NewProduct = Omit<ProductRecord, 'id' | 'createdAt' | 'updatedAt'>;

export type ProductPatch = Partial<Omit<NewProduct, 'stock'>>;

export const PRODUCT_SORTS = ['-createdAt', 'createdAt', 'price', '-price', 'name', '-name'] as const;
export type ProductSort = (typeof PRODUCT_SORTS)[number];

/**
 * A sort as an order-by map for either store: the field, then the id (named
 * `idField` in that store) in the same direction, so pages never overlap.
 */
export function sortOrder(sort: ProductSort, idField: string): Record<string, 'asc' | 'desc'> {
  const dir = sort.startsWith('-') ? 'desc' : 'asc';
  return { [sort.replace(/^-/, '')]: dir, [idField]: dir };
}

export interface ProductQuery {
  skip: number;
  limit: number;
  category?: string;
  /** Case-insensitive substring of the name. */
  q?: string;
  sort: ProductSort;
}

/** The most stock one product can hold (PostgreSQL's integer column); both stores keep to it. */
export const MAX_STOCK = 2_147_483_647;

export type StockChange =
  { ok: true; product: ProductRecord } | { ok: false; reason: 'not_found' | 'insufficient' | 'too_much' };

/**
 * Where products live. Two implementations, one behaviour, one test suite
 * (stores/store.suite.ts): `sql.ts` (PostgreSQL or PGlite) and `mongo.ts`.
 * Every stock change is a single conditional update (`stock >= n`), never
 * read-modify-write.
 */
export interface ProductStore {
  create(product: NewProduct): Promise<ProductRecord>;
  /** Inserts the products whose ids are not there yet; returns how many were inserted. */
  insertMissing(products: (NewProduct & { id: string })[]): Promise<number>;
  get(id: string): Promise<ProductRecord | null>;
  getMany(ids: string[]): Promise<ProductRecord[]>;
  list(query: ProductQuery): Promise<{ items: ProductRecord[]; total: number }>;
  update(id: string, patch: ProductPatch): Promise<ProductRecord | null>;
  remove(id: string): Promise<boolean>;
  /** Adds `delta` (may be negative) unless the result would be below 0. */
  adjustStock(id: string, delta: number): Promise<StockChange>;
  /** All lines or none; idempotent per reservation id. Throws OutOfStock, ProductNotFound, ReservationClosed. */
  reserve(reservationId: string, lines: StockLine[]): Promise<Reservation>;
  /** Gives back what the reservation took; true if it released something now. */
  release(reservationId: string): Promise<boolean>;
  count(): Promise<number>;
  ping(): Promise<void>;
}

/** Lines for the same product merged, sorted by id so concurrent reservations lock rows in one order. */
export function normaliseLines(lines: StockLine[]): StockLine[] {
  const merged = new Map<string, number>();
  for (const l of lines) merged.set(l.productId, (merged.get(l.productId) ?? 0) + l.quantity);
  return [...merged.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([productId, quantity]) => ({ productId, quantity }));
}

/**
 * The typed error for a reservation that failed at `failed`: ProductNotFound
 * naming unknown ids, else OutOfStock naming every line short at `available`
 * (stock as it stands after the attempt; the failed line is always named,
 * even if stock came back meanwhile).
 */
export function explain(lines: StockLine[], failed: StockLine, available: Map<string, number>): Error {
  const missing = lines.filter((l) => !available.has(l.productId)).map((l) => l.productId);
  if (missing.length) return new ProductNotFound(`Unknown products: ${missing.join(', ')}`, { ids: missing });
  const items = lines
    .filter((l) => l.productId === failed.productId || available.get(l.productId)! < l.quantity)
    .map((l) => ({ productId: l.productId, requested: l.quantity, available: available.get(l.productId)! }));
  return new OutOfStock(`Not enough stock for ${items.map((i) => i.productId).join(', ')}`, { items });
}
