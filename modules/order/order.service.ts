import { createHash, randomUUID } from 'node:crypto';
import type { EntityManager, FilterQuery } from '@mikro-orm/core';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { canSee, ownerScope, type Principal } from '../../kit/auth.ts';
import { outboxInsert, outboxValues, type EventRecorder } from '../../kit/events.ts';
import type { Sql } from '../../kit/sql.ts';
import { ServiceUnavailable, ValidationFailed, type FieldError } from '../../kit/errors.ts';
import type { Page } from '../../kit/pagination.ts';
import {
  OutOfStock,
  ProductNotFound,
  ReservationClosed,
  type ProductPort,
  type Reservation,
} from '../product/contract.ts';
import { UserNotFound, type UserPort } from '../user/contract.ts';
import { OrderNotFound, type OrderDto } from './contract.ts';
import { placedWith, type IdempotencyStore, type KeyClaim } from './idempotency.ts';
import { OrderEntity, type Order, type OrderLineRecord } from './order.entity.ts';
import {
  CustomerInactive,
  IdempotencyInFlight,
  OrderNotCancellable,
  OrderOutOfStock,
  OrderRejected,
} from './order.errors.ts';
import { isUuid, jsonColumn } from '../../kit/values.ts';
import type { Counter, Meter } from '../../kit/meter.ts';
import { SCHEMA, table } from './schema.ts';

export interface OrderLimits {
  /** Most units of one product in one order. */
  maxQuantity: number;
  /** Most distinct products in one order. */
  maxLines: number;
}

export interface OrderServiceDeps {
  orm: MikroORM;
  sql: Sql;
  users: UserPort;
  products: ProductPort;
  idempotency: IdempotencyStore;
  events: EventRecorder;
  limits: OrderLimits;
  currency: string;
  logger: Logger;
  meter: Meter;
}

export interface RequestedLine {
  productId: string;
  quantity: number;
}

export function toOrderDto(o: Order): OrderDto {
  const items = o.lines.map((l) => ({ ...l, lineTotal: l.unitPrice * l.quantity }));
  return {
    id: o.id,
    userId: o.userId,
    status: o.status,
    items,
    total: o.total,
    currency: o.currency,
    rejectionReason: o.rejectionReason,
    createdAt: o.createdAt.toISOString(),
    updatedAt: o.updatedAt.toISOString(),
  };
}

const totalOf = (lines: OrderLineRecord[]) => lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);

interface OrderRow {
  id: string;
  user_id: string;
  status: Order['status'];
  lines: OrderLineRecord[] | string;
  total: string | number;
  currency: string;
  rejection_reason: string | null;
  stock_held: boolean;
  last_step: Order['lastStep'];
  last_error: string | null;
  created_at: string | Date;
  updated_at: string | Date;
}

const fromRow = (r: OrderRow): Order => ({
  id: r.id,
  userId: r.user_id,
  status: r.status,
  lines: jsonColumn<OrderLineRecord[]>(r.lines),
  total: Number(r.total),
  currency: r.currency.trim(),
  rejectionReason: r.rejection_reason,
  stockHeld: r.stock_held,
  lastStep: r.last_step,
  lastError: r.last_error,
  createdAt: new Date(r.created_at),
  updatedAt: new Date(r.updated_at),
});

/** The columns a transition may change, by field. */
const CHANGEABLE: Partial<Record<keyof Order, string>> = {
  status: '"status"',
  lines: '"lines"',
  total: '"total"',
  rejectionReason: '"rejection_reason"',
  stockHeld: '"stock_held"',
  lastStep: '"last_step"',
  lastError: '"last_error"',
};

/** `"a" = $3, "b" = $4, "updated_at" = $5` and its values, parameters from `$first`. */
function setClause(change: Partial<Order>, updatedAt: Date, first: number): { sql: string; values: unknown[] } {
  const parts: string[] = [];
  const values: unknown[] = [];
  for (const [field, value] of Object.entries(change) as [keyof Order, unknown][]) {
    const column = CHANGEABLE[field];
    if (!column) throw new Error(`an order transition cannot change ${field}`);
    values.push(field === 'lines' ? JSON.stringify(value) : value);
    parts.push(`${column} = $${first + values.length - 1}${field === 'lines' ? '::jsonb' : ''}`);
  }
  values.push(updatedAt);
  parts.push(`"updated_at" = $${first + values.length - 1}`);
  return { sql: parts.join(', '), values };
}

/** Orders the recovery pass has yet to finish (matches the partial index `orders_unfinished_index`). */
const UNFINISHED = `"status" = 'pending' or ("status" = 'cancelled' and "stock_held")`;

/** An order as the staff's saga view shows it. */
export interface OrderSaga {
  id: string;
  userId: string;
  status: Order['status'];
  stockHeld: boolean;
  lastStep: Order['lastStep'];
  lastError: string | null;
  rejectionReason: string | null;
  createdAt: string;
  updatedAt: string;
  /** Seconds since the saga last moved. */
  idleSeconds: number;
}

/** An error as staff may read it: its message, never a stack, at most 500 characters. */
export const errorText = (err: unknown, context = '') =>
  `${context}${err instanceof Error ? err.message : String(err)}`.slice(0, 500);

export class OrderService {
  /** `toko_orders_total{outcome,reason}`: orders leaving `pending` or `confirmed`, counted where the change commits. */
  private readonly outcomes: Counter<'outcome' | 'reason'>;

  constructor(private readonly d: OrderServiceDeps) {
    this.outcomes = d.meter.counter({
      name: 'toko_orders_total',
      help: 'Orders by outcome (confirmed, rejected, cancelled) and rejection reason (none unless rejected)',
      labelNames: ['outcome', 'reason'],
    });
  }

  private em(): EntityManager {
    return this.d.orm.em.fork();
  }

  /**
   * Lines for the same product are merged (quantities added), then checked
   * against the limits. Returns them in the order first given.
   */
  normalise(items: RequestedLine[]): RequestedLine[] {
    const merged = new Map<string, number>();
    for (const i of items) merged.set(i.productId, (merged.get(i.productId) ?? 0) + i.quantity);
    const lines = [...merged].map(([productId, quantity]) => ({ productId, quantity }));
    const errors: FieldError[] = [];
    if (lines.length > this.d.limits.maxLines)
      errors.push({ path: 'items', message: `At most ${this.d.limits.maxLines} different products per order` });
    lines.forEach((l) => {
      if (l.quantity > this.d.limits.maxQuantity) {
        const index = items.findIndex((i) => i.productId === l.productId);
        errors.push({
          path: `items.${index}.quantity`,
          message: `At most ${this.d.limits.maxQuantity} of one product per order`,
        });
      }
    });
    if (errors.length) throw new ValidationFailed('The order is not valid', { errors });
    return lines;
  }

  /** Places an order once per Idempotency-Key (when given) for this user. */
  place(userId: string, items: RequestedLine[], idempotencyKey?: string): Promise<OrderDto> {
    const lines = this.normalise(items);
    if (!idempotencyKey) return this.placeOnce(userId, lines);
    const hash = createHash('sha256').update(JSON.stringify(lines)).digest('hex');
    return this.d.idempotency.run(
      userId,
      idempotencyKey,
      hash,
      (claim) => this.placeOnce(userId, lines, claim),
      (orderId) => this.outcomeOf(orderId),
    );
  }

  /**
   * The placing saga: persist `pending`, reserve stock in the product module
   * (no transaction is open across that call), then `confirmed` or
   * `rejected`. When the product module cannot answer, the order stays
   * `pending` and the recovery pass finishes it.
   */
  private async placeOnce(userId: string, lines: RequestedLine[], claim?: KeyClaim): Promise<OrderDto> {
    await this.ensureCustomer(userId);
    const snapshots = await this.d.products.getPrices({ ids: lines.map((l) => l.productId) });
    const byId = new Map(snapshots.map((s) => [s.id, s]));
    const unknown = lines.flatMap((l, i) =>
      byId.has(l.productId) ? [] : [{ path: `items.${i}.productId`, message: 'No such product' }],
    );
    if (unknown.length) throw new ValidationFailed('The order names products that do not exist', { errors: unknown });

    const now = new Date();
    const pendingLines = lines.map((l) => ({
      productId: l.productId,
      quantity: l.quantity,
      name: byId.get(l.productId)!.name,
      unitPrice: byId.get(l.productId)!.price,
    }));
    const order: Order = {
      id: randomUUID(),
      userId,
      status: 'pending',
      lines: pendingLines,
      total: totalOf(pendingLines),
      currency: this.d.currency,
      rejectionReason: null,
      stockHeld: true,
      lastStep: 'placed',
      lastError: null,
      createdAt: now,
      updatedAt: now,
    };
    await this.insertPending(order, claim);

    let reservation: Reservation;
    try {
      reservation = await this.d.products.reserveStock({ reservationId: order.id, items: lines });
    } catch (err) {
      throw await this.failedReservation(order.id, err);
    }
    // The reservation's snapshot is what the customer pays: it was taken atomically with the stock.
    const confirmedLines = reservation.lines.map((l) => ({
      productId: l.productId,
      quantity: l.quantity,
      name: l.name,
      unitPrice: l.unitPrice,
    }));
    const confirmed = await this.confirm({
      ...order,
      status: 'confirmed',
      lines: confirmedLines,
      total: totalOf(confirmedLines),
      updatedAt: new Date(),
    });
    if (!confirmed)
      throw new OrderRejected('The order could not be completed in time and was released', { orderId: order.id });
    this.d.logger.info({ orderId: order.id, total: confirmed.total }, 'order confirmed');
    return toOrderDto(confirmed);
  }

  /**
   * What a retry answers for the order an abandoned attempt placed under its key: a confirmed (or since
   * cancelled) order as it is; a pending one is still being settled (409, retry shortly); a rejected one came to
   * nothing, so the retry places the order again (undefined).
   */
  private async outcomeOf(orderId: string): Promise<OrderDto | undefined> {
    const order = await this.getById(orderId);
    if (order.status === 'pending')
      throw new IdempotencyInFlight(
        'The first request with this Idempotency-Key is still being settled; retry shortly',
      );
    return order.status === 'rejected' ? undefined : order;
  }

  /**
   * One autocommitted insert: the order exists, pending, before any stock is
   * taken for it (recovery finds it if we die). Under an Idempotency-Key, the
   * same statement names the order on the key, and places it only while this
   * attempt still holds the key.
   */
  private async insertPending(order: Order, claim: KeyClaim | undefined): Promise<void> {
    const tag = claim && placedWith(claim, order.id, 7);
    const inserted = await this.d.sql.query(
      `${tag ? `with ${tag.sql} ` : ''}insert into ${table('orders')} ("id", "user_id", "status", "lines", "total", "currency", "rejection_reason", "stock_held", "created_at", "updated_at")
       select $1::uuid, $2, 'pending', $3::jsonb, $4::bigint, $5, null, true, $6::timestamptz, $6::timestamptz
       ${tag ? 'where exists (select 1 from "placed_with")' : ''} returning "id"`,
      [
        order.id,
        order.userId,
        JSON.stringify(order.lines),
        order.total,
        order.currency,
        order.createdAt,
        ...(tag?.values ?? []),
      ],
      tag ? 'orders.insertPendingUnderKey' : 'orders.insertPending',
    );
    if (inserted.length === 0)
      throw new IdempotencyInFlight('This Idempotency-Key was taken over by a later attempt; retry to get its outcome');
  }

  /**
   * pending → confirmed and its order.confirmed event in one statement (an
   * update and the outbox insert in one CTE, so they commit together), if
   * the order is still pending. Returns null when it is not (the recovery
   * pass gave it up meanwhile).
   */
  private async confirm(order: Order): Promise<Order | null> {
    const entry = this.d.events.entry('order.confirmed', toOrderDto(order));
    const rows = await this.d.sql.query(
      `with "changed" as (
         update ${table('orders')} set "status" = 'confirmed', "lines" = $2::jsonb, "total" = $3, "updated_at" = $4, "last_step" = 'confirmed', "last_error" = null
         where "id" = $1 and "status" = 'pending' returning "id")
       ${outboxInsert(SCHEMA, 5, '"changed"')} returning "id"`,
      [order.id, JSON.stringify(order.lines), order.total, order.updatedAt, ...outboxValues(entry)],
      'orders.confirm',
    );
    if (rows.length === 0) return null;
    this.d.events.wake();
    this.outcomes.inc({ outcome: 'confirmed', reason: 'none' });
    return order;
  }

  private async failedReservation(orderId: string, err: unknown): Promise<Error> {
    if (err instanceof OutOfStock) {
      await this.transition(orderId, 'pending', {
        status: 'rejected',
        rejectionReason: 'out_of_stock',
        stockHeld: false,
        lastStep: 'rejected',
      });
      this.d.logger.info({ orderId }, 'order rejected: out of stock');
      return new OrderOutOfStock(err.message, { orderId, items: err.extras.items });
    }
    if (err instanceof ProductNotFound) {
      await this.transition(orderId, 'pending', {
        status: 'rejected',
        rejectionReason: 'product_unavailable',
        stockHeld: false,
        lastStep: 'rejected',
      });
      return new OrderRejected('A product was removed while ordering', { orderId, ids: err.extras.ids });
    }
    if (err instanceof ReservationClosed) {
      // The reservation was closed: the recovery pass already gave this order up.
      return new OrderRejected('The order could not be completed in time and was released', { orderId });
    }
    this.d.logger.warn({ err, orderId }, 'stock reservation failed; order left pending for recovery');
    await this.transition(orderId, 'pending', { lastStep: 'reserve_failed', lastError: errorText(err) }).catch(
      () => undefined,
    );
    return new ServiceUnavailable('The catalogue is not available right now; the order was not placed', {
      orderId,
      retryAfterSeconds: 5,
    });
  }

  /**
   * Moves an order out of `from` if it is still there (the condition makes
   * racing writers safe), recording `event` in the same transaction.
   */
  async transition(
    id: string,
    from: Order['status'],
    change: Partial<Order>,
    event?: 'order.confirmed' | 'order.cancelled',
  ): Promise<Order | null> {
    const set = setClause(change, new Date(), 3);
    const update = `update ${table('orders')} set ${set.sql} where "id" = $1 and "status" = $2 returning *`;
    const values = [id, from, ...set.values];
    const order = event
      ? await this.d.sql.transaction(async (tx) => {
          const rows = await tx.query<OrderRow>(update, values);
          if (!rows[0]) return null;
          const changed = fromRow(rows[0]);
          await this.d.events.recordIn(tx, event, toOrderDto(changed));
          return changed;
        })
      : await this.d.sql.query<OrderRow>(update, values).then((rows) => (rows[0] ? fromRow(rows[0]) : null));
    if (order && event) this.d.events.wake();
    if (order && change.status) this.outcomes.inc({ outcome: change.status, reason: change.rejectionReason ?? 'none' });
    return order;
  }

  private async ensureCustomer(userId: string): Promise<void> {
    try {
      const user = await this.d.users.getUser({ id: userId });
      if (user.isActive) return;
    } catch (err) {
      if (!(err instanceof UserNotFound)) throw err;
    }
    throw new CustomerInactive('This account cannot place orders');
  }

  /** The order if the caller may see it; otherwise OrderNotFound, exactly as for an id that does not exist. */
  async get(id: string, principal: Principal): Promise<OrderDto> {
    return toOrderDto(await this.visible(id, principal));
  }

  /** For other modules: any order by id. */
  async getById(id: string): Promise<OrderDto> {
    const order = isUuid(id) ? await this.em().findOne(OrderEntity, { id }) : null;
    if (!order) throw new OrderNotFound(`No order with id ${id}`, { id });
    return toOrderDto(order);
  }

  private async visible(id: string, principal: Principal): Promise<Order> {
    const order = isUuid(id) ? await this.em().findOne(OrderEntity, { id }) : null;
    if (!order || !canSee(principal, order.userId)) throw new OrderNotFound(`No order with id ${id}`, { id });
    return order;
  }

  async list(
    principal: Principal,
    q: { skip: number; limit: number; status?: Order['status']; userId?: string },
  ): Promise<Page<OrderDto>> {
    const where: FilterQuery<Order> = {};
    const userId = ownerScope(principal, q.userId, 'orders');
    if (userId) where.userId = userId;
    if (q.status) where.status = q.status;
    const [orders, total] = await this.em().findAndCount(OrderEntity, where, {
      orderBy: { createdAt: 'desc', id: 'desc' },
      offset: q.skip,
      limit: q.limit,
    });
    return { items: orders.map(toOrderDto), total, skip: q.skip, limit: q.limit };
  }

  /**
   * Orders by saga state, for staff: each with its last step and error.
   * `stuck` keeps those the recovery pass has yet to finish — pending, or
   * cancelled with stock still held — untouched for `stuckAfterSeconds`;
   * oldest first.
   */
  async sagas(
    q: { skip: number; limit: number; status?: Order['status']; stuck?: boolean },
    stuckAfterSeconds: number,
  ): Promise<Page<OrderSaga>> {
    const where: string[] = [];
    const values: unknown[] = [];
    if (q.status) where.push(`"status" = $${values.push(q.status)}`);
    if (q.stuck)
      where.push(
        `(${UNFINISHED}) and "updated_at" <= now() - make_interval(secs => $${values.push(stuckAfterSeconds)})`,
      );
    const filter = where.length ? `where ${where.join(' and ')}` : '';
    const rows = await this.d.sql.query<OrderRow & { total_count: string }>(
      // The total as a scalar subquery, counted once: a window count would read and hold every matching row first.
      `select *, (select count(*) from ${table('orders')} ${filter}) as "total_count" from ${table('orders')} ${filter} order by "updated_at" asc, "id" limit $${values.length + 1} offset $${values.length + 2}`,
      [...values, q.limit, q.skip],
    );
    const total = rows[0]
      ? Number(rows[0].total_count)
      : q.skip > 0
        ? Number(
            (
              await this.d.sql.query<{ n: string }>(`select count(*) as n from ${table('orders')} ${filter}`, values)
            )[0]!.n,
          )
        : 0;
    const now = Date.now();
    return {
      items: rows.map(fromRow).map((o) => ({
        id: o.id,
        userId: o.userId,
        status: o.status,
        stockHeld: o.stockHeld,
        lastStep: o.lastStep,
        lastError: o.lastError,
        rejectionReason: o.rejectionReason,
        createdAt: o.createdAt.toISOString(),
        updatedAt: o.updatedAt.toISOString(),
        idleSeconds: Math.max(0, Math.floor((now - o.updatedAt.getTime()) / 1000)),
      })),
      total,
      skip: q.skip,
      limit: q.limit,
    };
  }

  /** How many orders recovery has yet to finish, untouched for `afterSeconds`: pending ones, and cancelled ones still holding stock. */
  async stuckCounts(afterSeconds: number): Promise<{ pending: number; stockHeld: number }> {
    const [row] = await this.d.sql.query<{ pending: string; held: string }>(
      `select count(*) filter (where "status" = 'pending') as "pending", count(*) filter (where "status" = 'cancelled') as "held"
       from ${table('orders')} where (${UNFINISHED}) and "updated_at" <= now() - make_interval(secs => $1)`,
      [afterSeconds],
      'orders.stuckCounts',
    );
    return { pending: Number(row?.pending ?? 0), stockHeld: Number(row?.held ?? 0) };
  }

  /** Cancels a confirmed order and gives its stock back; a failed give-back is retried by the recovery pass. */
  async cancel(id: string, principal: Principal): Promise<OrderDto> {
    const order = await this.visible(id, principal);
    const cancelled =
      order.status === 'confirmed'
        ? await this.transition(id, 'confirmed', { status: 'cancelled', lastStep: 'cancelled' }, 'order.cancelled')
        : null;
    if (!cancelled)
      throw new OrderNotCancellable(`Only confirmed orders can be cancelled; this one is ${order.status}`, {
        orderStatus: order.status,
      });
    this.d.logger.info({ orderId: id }, 'order cancelled');
    return toOrderDto((await this.releaseStock(cancelled)) ?? cancelled);
  }

  /** Asks the product module to give back this order's stock, then records that it did. */
  async releaseStock(order: Order): Promise<Order | null> {
    try {
      await this.d.products.releaseStock({ reservationId: order.id });
    } catch (err) {
      this.d.logger.warn({ err, orderId: order.id }, 'stock release failed; the recovery pass will retry');
      await this.transition(order.id, order.status, { lastStep: 'release_failed', lastError: errorText(err) }).catch(
        () => undefined,
      );
      return null;
    }
    return this.transition(order.id, order.status, { stockHeld: false, lastStep: 'released', lastError: null });
  }
}
