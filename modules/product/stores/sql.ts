import { ObjectId } from 'bson';
import type { FilterQuery, QueryOrderMap } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { ReservationClosed, type Reservation, type ReservedLine, type StockLine } from '../contract.ts';
import { sqlState, type Sql } from '../../../kit/sql.ts';
import { jsonColumn } from '../../../kit/values.ts';
import { ProductEntity } from '../product.entity.ts';
import {
  normaliseLines,
  sortOrder,
  MAX_STOCK,
  explain,
  type NewProduct,
  type ProductPatch,
  type ProductQuery,
  type ProductRecord,
  type ProductStore,
  type StockChange,
} from './store.ts';
import { table } from '../schema.ts';

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

type Row = {
  id: string;
  name: string;
  description: string;
  price: string | number;
  stock: number;
  category: string;
  image_url: string | null;
  created_at: Date | string;
  updated_at: Date | string;
};

const COLUMNS = `"id", "name", "description", "price", "stock", "category", "image_url", "created_at", "updated_at"`;

const fromRow = (r: Row): ProductRecord => ({
  id: r.id,
  name: r.name,
  description: r.description,
  price: Number(r.price),
  stock: r.stock,
  category: r.category,
  imageUrl: r.image_url,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/** Products in the module's own PostgreSQL schema (a server, or the embedded PGlite). */
export class SqlProductStore implements ProductStore {
  constructor(
    private readonly orm: MikroORM,
    private readonly sql: Sql,
    private readonly currency: string,
  ) {}

  private em(): EntityManager {
    return this.orm.em.fork();
  }

  async create(p: NewProduct): Promise<ProductRecord> {
    const em = this.em();
    const now = new Date();
    const product = em.create(ProductEntity, {
      id: new ObjectId().toHexString(),
      ...p,
      createdAt: now,
      updatedAt: now,
    });
    await em.flush();
    return product;
  }

  async insertMissing(products: (NewProduct & { id: string })[]): Promise<number> {
    let inserted = 0;
    for (const p of products) {
      const rows = await this.em().execute(
        `insert into ${table('products')} ("id", "name", "description", "price", "stock", "category", "image_url", "created_at", "updated_at")
         values (?, ?, ?, ?, ?, ?, ?, now(), now()) on conflict ("id") do nothing returning "id"`,
        [p.id, p.name, p.description, p.price, p.stock, p.category, p.imageUrl],
      );
      inserted += rows.length;
    }
    return inserted;
  }

  async get(id: string): Promise<ProductRecord | null> {
    const rows = await this.sql.query<Row>(
      `select ${COLUMNS} from ${table('products')} where "id" = $1`,
      [id],
      'products.get',
    );
    return rows[0] ? fromRow(rows[0]) : null;
  }

  async getMany(ids: string[]): Promise<ProductRecord[]> {
    const rows = await this.sql.query<Row>(
      `select ${COLUMNS} from ${table('products')} where "id" = any($1::varchar[])`,
      [ids],
      'products.getMany',
    );
    return rows.map(fromRow);
  }

  async list(q: ProductQuery): Promise<{ items: ProductRecord[]; total: number }> {
    const where: FilterQuery<ProductRecord> = {};
    if (q.category) where.category = q.category;
    if (q.q) where.name = { $ilike: `%${likeEscape(q.q)}%` };
    const [items, total] = await this.em().findAndCount(ProductEntity, where, {
      orderBy: sortOrder(q.sort, 'id') as QueryOrderMap<ProductRecord>,
      offset: q.skip,
      limit: q.limit,
    });
    return { items, total };
  }

  async update(id: string, patch: ProductPatch): Promise<ProductRecord | null> {
    const em = this.em();
    const product = await em.findOne(ProductEntity, { id });
    if (!product) return null;
    em.assign(product, { ...patch, updatedAt: new Date() });
    await em.flush();
    return product;
  }

  async remove(id: string): Promise<boolean> {
    return (await this.em().nativeDelete(ProductEntity, { id })) > 0;
  }

  async adjustStock(id: string, delta: number): Promise<StockChange> {
    const rows = await this.em().execute<Row[]>(
      `update ${table('products')} set "stock" = "stock" + ?, "updated_at" = now()
       where "id" = ? and "stock"::bigint + ?::bigint between 0 and ${MAX_STOCK} returning *`,
      [delta, id, delta],
    );
    if (rows[0]) return { ok: true, product: fromRow(rows[0]) };
    const current = await this.get(id);
    return { ok: false, reason: !current ? 'not_found' : current.stock + delta < 0 ? 'insufficient' : 'too_much' };
  }

  /** One statement (products.reserve_stock, a committed migration): claim the id, take every line or none, record what was taken. */
  async reserve(reservationId: string, input: StockLine[]): Promise<Reservation> {
    const lines = normaliseLines(input);
    try {
      const rows = await this.sql.query<{ lines: Omit<ReservedLine, 'currency'>[] | string }>(
        `select ${table('reserve_stock')}($1, $2::varchar[], $3::int[]) as "lines"`,
        [reservationId, lines.map((l) => l.productId), lines.map((l) => l.quantity)],
        'products.reserve',
      );
      const taken = jsonColumn<Omit<ReservedLine, 'currency'>[]>(rows[0]!.lines);
      return {
        reservationId,
        lines: taken.map((l) => ({ ...l, unitPrice: Number(l.unitPrice), currency: this.currency })),
      };
    } catch (err) {
      if (sqlState(err) === 'TK001')
        throw new ReservationClosed(`Reservation ${reservationId} was released and cannot reserve again`, {
          reservationId,
        });
      if (sqlState(err) === 'TK002') {
        const failed = lines.find((l) => l.productId === (err as { detail?: string }).detail) ?? lines[0]!;
        throw await this.explainShortage(lines, failed);
      }
      throw err;
    }
  }

  /** After the rolled-back attempt: which lines were short or unknown, as they stand now. */
  private async explainShortage(lines: StockLine[], failed: StockLine): Promise<Error> {
    const found = await this.getMany(lines.map((l) => l.productId));
    return explain(lines, failed, new Map(found.map((p) => [p.id, p.stock])));
  }

  async release(reservationId: string): Promise<boolean> {
    return this.orm.em.fork().transactional(async (em) => {
      // Releasing an unknown id leaves a tombstone, so a reserve that arrives later cannot take stock.
      const tombstone = await em.execute(
        `insert into ${table('reservations')} ("id", "status") values (?, 'released') on conflict ("id") do nothing returning "id"`,
        [reservationId],
      );
      if (tombstone.length > 0) return false;
      const rows = await em.execute<{ status: string; lines: ReservedLine[] | string }[]>(
        `select "status", "lines" from ${table('reservations')} where "id" = ? for update`,
        [reservationId],
      );
      const row = rows[0];
      if (!row || row.status === 'released') return false;
      for (const line of jsonColumn<ReservedLine[]>(row.lines)) {
        await em.execute(`update ${table('products')} set "stock" = "stock" + ?, "updated_at" = now() where "id" = ?`, [
          line.quantity,
          line.productId,
        ]);
      }
      await em.execute(
        `update ${table('reservations')} set "status" = 'released', "updated_at" = now() where "id" = ?`,
        [reservationId],
      );
      return true;
    });
  }

  count(): Promise<number> {
    return this.em().count(ProductEntity, {});
  }

  async ping(): Promise<void> {
    await this.em().execute('select 1');
  }
}
