import { setTimeout as sleep } from 'node:timers/promises';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { ProductPort } from '../product/contract.ts';
import type { IdempotencyStore } from './idempotency.ts';
import { OrderEntity } from './order.entity.ts';
import { isStoreOutage } from '../../kit/outage.ts';
import { table } from './schema.ts';
import { errorText, type OrderService } from './order.service.ts';

export interface RecoveryOptions {
  /** A pending order older than this did not complete (no request takes this long). */
  pendingTimeoutSeconds: number;
  intervalSeconds: number;
}

export interface RecoveryResult {
  /** Stuck pending orders released and rejected. */
  compensated: number;
  /** Cancelled orders whose stock was given back now. */
  released: number;
  prunedKeys: number;
}

/**
 * Finishes what a crash or an unavailable product module left behind, at
 * start-up and then periodically: a `pending` order older than the timeout
 * has its reservation released (idempotent; it also closes the reservation
 * so a late reserve cannot take stock) and then becomes `rejected`; a
 * cancelled order whose stock is still held gets it released. Safe to run in
 * several processes at once (every step is idempotent or conditional), but
 * the periodic pass runs on one replica per period: each tick claims the
 * period in `periodic_runs` (one conditional upsert), and only the replica
 * whose claim succeeds runs it.
 */
export class OrderRecovery {
  private readonly o: RecoveryOptions;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<RecoveryResult> | undefined;

  constructor(
    private readonly deps: {
      orm: MikroORM;
      products: ProductPort;
      orders: OrderService;
      idempotency: IdempotencyStore;
      logger: Logger;
    },
    opts: RecoveryOptions,
  ) {
    this.o = { ...opts };
    if (this.o.pendingTimeoutSeconds < 0) throw new Error('pendingTimeoutSeconds must not be negative');
    if (this.o.intervalSeconds < 1) throw new Error('intervalSeconds must be at least 1');
  }

  start(): void {
    this.timer = setInterval(
      () =>
        void this.tick().catch((err: unknown) =>
          // A database that is away is an outage, said as a warning; the next tick tries again.
          isStoreOutage(err)
            ? this.deps.logger.warn({ err }, 'order recovery skipped: its database is unavailable')
            : this.deps.logger.error({ err }, 'order recovery failed'),
        ),
      this.o.intervalSeconds * 1000,
    );
    this.timer.unref();
  }

  /**
   * The periodic pass, on whichever replica claims this period first: the
   * claim succeeds when no replica ran it within the last period (a little
   * less, so timers that drift do not skip one). Returns undefined when
   * another replica has it.
   */
  async tick(): Promise<RecoveryResult | undefined> {
    const claimed = await this.deps.orm.em
      .fork()
      .getConnection()
      .execute<{ name: string }[]>(
        `insert into ${table('periodic_runs')} ("name", "ran_at") values ('order-recovery', now())
         on conflict ("name") do update set "ran_at" = excluded."ran_at"
         where ${table('periodic_runs')}."ran_at" <= now() - ?::int * interval '1 millisecond'
         returning "name"`,
        [Math.round(this.o.intervalSeconds * 1000 * 0.9)],
      );
    if (claimed.length === 0) return undefined;
    return this.runOnce();
  }

  /** Stops the timer and waits for a pass in progress, at most `waitMs` (a pass stuck on a dead database must not block shutdown). */
  async stop(waitMs = 5000): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.running) await Promise.race([this.running.catch(() => undefined), sleep(waitMs)]);
  }

  /** One pass; concurrent calls share the pass in progress. */
  runOnce(): Promise<RecoveryResult> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<RecoveryResult> {
    const { orm, products, orders, idempotency, logger } = this.deps;
    const em = orm.em.fork();
    const cutoff = new Date(Date.now() - this.o.pendingTimeoutSeconds * 1000);
    const result: RecoveryResult = { compensated: 0, released: 0, prunedKeys: 0 };

    const stuck = await em.find(
      OrderEntity,
      { status: 'pending', updatedAt: { $lte: cutoff } },
      { limit: 500, orderBy: { updatedAt: 'asc' } },
    );
    for (const order of stuck) {
      try {
        // Release first: if we die after it, the next pass releases again (a no-op) and rejects.
        await products.releaseStock({ reservationId: order.id });
        const rejected = await orders.transition(order.id, 'pending', {
          status: 'rejected',
          rejectionReason: 'not_completed',
          stockHeld: false,
          lastStep: 'rejected',
        });
        if (rejected) {
          result.compensated++;
          logger.warn({ orderId: order.id }, 'stuck pending order released and rejected');
        }
      } catch (err) {
        logger.warn({ err, orderId: order.id }, 'could not compensate a pending order; will retry');
        await orders
          .transition(order.id, 'pending', { lastError: errorText(err, 'recovery could not release the stock: ') })
          .catch(() => undefined);
      }
    }

    const held = await em.find(
      OrderEntity,
      { status: 'cancelled', stockHeld: true, updatedAt: { $lte: cutoff } },
      { limit: 500 },
    );
    for (const order of held) {
      if (await orders.releaseStock(order)) result.released++;
    }

    result.prunedKeys = await idempotency.prune();
    return result;
  }
}
