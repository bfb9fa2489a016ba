import { ObjectId } from 'bson';
import type { FilterQuery, QueryOrderMap } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/mongodb';
import { ReservationClosed, type Reservation, type ReservedLine, type StockLine } from '../contract.ts';
import { ProductDocumentSchema, type ProductDocument } from '../product.document.ts';
import {
  explain,
  normaliseLines,
  sortOrder,
  MAX_STOCK,
  type NewProduct,
  type ProductPatch,
  type ProductQuery,
  type ProductRecord,
  type ProductStore,
  type StockChange,
} from './store.ts';

interface ReservationDoc {
  _id: string;
  status: 'pending' | 'active' | 'released';
  /** Lines whose stock has been taken, pushed one by one, so a release gives back exactly these. */
  applied: ReservedLine[];
  createdAt: Date;
  updatedAt: Date;
}

const HEX24 = /^[0-9a-f]{24}$/;
const oid = (id: string) => (HEX24.test(id) ? new ObjectId(id) : null);
const regexEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

const toRecord = (d: Omit<ProductDocument, 'id'> & { id?: string }): ProductRecord => ({
  id: d._id.toHexString(),
  name: d.name,
  description: d.description,
  price: d.price,
  stock: d.stock,
  category: d.category,
  imageUrl: d.imageUrl ?? null,
  createdAt: d.createdAt,
  updatedAt: d.updatedAt,
});

/**
 * Products in MongoDB through MikroORM's Mongo driver, with no multi-document
 * transactions (the driver's default). Stock changes are single conditional
 * `$inc` updates; a reservation takes its lines one by one, records each in
 * its reservation document, and gives back what it took when a later line is
 * short. A process that dies between taking a line and recording it leaves
 * that line's stock taken: stock can be under-counted then, never oversold.
 */
export class MongoProductStore implements ProductStore {
  constructor(
    private readonly orm: MikroORM,
    private readonly currency: string,
  ) {}

  private em(): EntityManager {
    return this.orm.em.fork();
  }

  private products() {
    return this.orm.em.getConnection().getCollection<Omit<ProductDocument, 'id'>>('products');
  }

  private reservations() {
    return this.orm.em.getConnection().getCollection<ReservationDoc>('reservations');
  }

  async create(p: NewProduct): Promise<ProductRecord> {
    const em = this.em();
    const now = new Date();
    const doc = em.create(ProductDocumentSchema, { _id: new ObjectId(), ...p, createdAt: now, updatedAt: now });
    await em.flush();
    return toRecord(doc);
  }

  async insertMissing(products: (NewProduct & { id: string })[]): Promise<number> {
    let inserted = 0;
    for (const { id, ...p } of products) {
      const now = new Date();
      const res = await this.products().updateOne(
        { _id: new ObjectId(id) },
        { $setOnInsert: { ...p, createdAt: now, updatedAt: now } },
        { upsert: true },
      );
      inserted += res.upsertedCount;
    }
    return inserted;
  }

  async get(id: string): Promise<ProductRecord | null> {
    const _id = oid(id);
    if (!_id) return null;
    const doc = await this.em().findOne(ProductDocumentSchema, { _id });
    return doc ? toRecord(doc) : null;
  }

  async getMany(ids: string[]): Promise<ProductRecord[]> {
    const _ids = ids.map(oid).filter((v): v is ObjectId => v !== null);
    if (!_ids.length) return [];
    return (await this.em().find(ProductDocumentSchema, { _id: { $in: _ids } })).map(toRecord);
  }

  async list(q: ProductQuery): Promise<{ items: ProductRecord[]; total: number }> {
    const where: FilterQuery<ProductDocument> = {};
    if (q.category) where.category = q.category;
    if (q.q) where.name = new RegExp(regexEscape(q.q), 'i');
    const [items, total] = await this.em().findAndCount(ProductDocumentSchema, where, {
      orderBy: sortOrder(q.sort, '_id') as QueryOrderMap<ProductDocument>,
      offset: q.skip,
      limit: q.limit,
    });
    return { items: items.map(toRecord), total };
  }

  async update(id: string, patch: ProductPatch): Promise<ProductRecord | null> {
    const _id = oid(id);
    if (!_id) return null;
    const doc = await this.products().findOneAndUpdate(
      { _id },
      { $set: { ...patch, updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
    return doc ? toRecord(doc) : null;
  }

  async remove(id: string): Promise<boolean> {
    const _id = oid(id);
    return _id ? (await this.products().deleteOne({ _id })).deletedCount > 0 : false;
  }

  async adjustStock(id: string, delta: number): Promise<StockChange> {
    const _id = oid(id);
    if (!_id) return { ok: false, reason: 'not_found' };
    const doc = await this.products().findOneAndUpdate(
      { _id, stock: { $gte: -delta, $lte: MAX_STOCK - delta } },
      { $inc: { stock: delta }, $set: { updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
    if (doc) return { ok: true, product: toRecord(doc) };
    const current = await this.get(id);
    return { ok: false, reason: !current ? 'not_found' : current.stock + delta < 0 ? 'insufficient' : 'too_much' };
  }

  async reserve(reservationId: string, input: StockLine[]): Promise<Reservation> {
    const lines = normaliseLines(input);
    const now = new Date();
    const claimed = await this.reservations().updateOne(
      { _id: reservationId },
      { $setOnInsert: { status: 'pending', applied: [], createdAt: now, updatedAt: now } },
      { upsert: true },
    );
    if (claimed.upsertedCount === 0) return this.existing(reservationId);
    for (const line of lines) {
      const _id = oid(line.productId);
      const doc = _id
        ? await this.products().findOneAndUpdate(
            { _id, stock: { $gte: line.quantity } },
            { $inc: { stock: -line.quantity }, $set: { updatedAt: new Date() } },
            { projection: { name: 1, price: 1 } },
          )
        : null;
      if (!doc) {
        // All or nothing: give back the lines taken so far, and forget the id so a retry may try again (as SQL's rollback does).
        if (await this.giveBack(reservationId))
          await this.reservations().deleteOne({ _id: reservationId, status: 'released' });
        const found = await this.getMany(lines.map((l) => l.productId));
        throw explain(lines, line, new Map(found.map((p) => [p.id, p.stock])));
      }
      const taken: ReservedLine = { ...line, name: doc.name, unitPrice: doc.price, currency: this.currency };
      const recorded = await this.reservations().updateOne(
        { _id: reservationId, status: 'pending' },
        { $push: { applied: taken } },
      );
      if (recorded.matchedCount === 0) {
        // Released meanwhile: the release gave back what was recorded before it; this line is ours to give back.
        await this.products().updateOne({ _id: _id! }, { $inc: { stock: line.quantity } });
        throw this.closed(reservationId);
      }
    }
    const done = await this.reservations().findOneAndUpdate(
      { _id: reservationId, status: 'pending' },
      { $set: { status: 'active', updatedAt: new Date() } },
      { returnDocument: 'after' },
    );
    if (!done) throw this.closed(reservationId);
    return { reservationId, lines: done.applied };
  }

  private closed(reservationId: string): ReservationClosed {
    return new ReservationClosed(`Reservation ${reservationId} was released and cannot reserve again`, {
      reservationId,
    });
  }

  private async existing(reservationId: string): Promise<Reservation> {
    const doc = await this.reservations().findOne({ _id: reservationId });
    if (!doc || doc.status === 'released') throw this.closed(reservationId);
    return { reservationId, lines: doc.applied };
  }

  /** Gives back every recorded line once: flipping the status to `released` decides who gives back. */
  private async giveBack(reservationId: string): Promise<boolean> {
    const before = await this.reservations().findOneAndUpdate(
      { _id: reservationId, status: { $in: ['pending', 'active'] } },
      { $set: { status: 'released', updatedAt: new Date() } },
      { returnDocument: 'before' },
    );
    if (!before) return false;
    for (const line of before.applied) {
      const _id = oid(line.productId);
      if (_id)
        await this.products().updateOne({ _id }, { $inc: { stock: line.quantity }, $set: { updatedAt: new Date() } });
    }
    return true;
  }

  async release(reservationId: string): Promise<boolean> {
    if (await this.giveBack(reservationId)) return true;
    const now = new Date();
    await this.reservations().updateOne(
      { _id: reservationId },
      { $setOnInsert: { status: 'released', applied: [], createdAt: now, updatedAt: now } },
      { upsert: true },
    );
    return false;
  }

  count(): Promise<number> {
    return this.em().count(ProductDocumentSchema, {});
  }

  async ping(): Promise<void> {
    await this.orm.em.getConnection().getDb().command({ ping: 1 });
  }
}
