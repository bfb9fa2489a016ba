import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { EventDef } from '../../kit/contract.ts';
import type { EventBus, EventEnvelope } from '../../kit/events.ts';
import { subjectOf } from './routing.ts';
import { isStoreOutage } from '../db/outage.ts';
import type { Sql } from '../../kit/sql.ts';
import { SpanKind, contextFrom, currentTraceparent, inSpan } from '../../kit/tracing.ts';
import { jsonColumn } from '../../kit/values.ts';

export interface OutboxRelayOptions {
  module: string;
  schema: string;
  sql: Sql;
  bus: EventBus;
  /** The module's contract events: their ordering keys say which events go out in order. */
  events: Record<string, EventDef>;
  logger: Logger;
  /** Delivery attempts before an event is marked dead. */
  maxAttempts: number;
  /** Delay before the second attempt; doubles after each failure (with jitter). */
  backoffMs: number;
  /** How often the outbox is read even when nobody woke the relay (rows left by a crash). */
  pollMs: number;
  /** Delivered rows older than this are deleted. */
  retentionHours: number;
  /** Events delivered at once (of different subjects); 1 delivers strictly one after another. */
  concurrency?: number;
  /** How long a claimed row stays claimed: if the relay dies mid-delivery, another pass takes it after this. Longer than any delivery. */
  leaseSeconds?: number;
  batchSize?: number;
}

export interface OutboxRow {
  id: string;
  type: string;
  version: number;
  payload: unknown;
  request_id: string | null;
  /** traceparent of the request that recorded the event (null when tracing was off). */
  trace_context: string | null;
  /** What the event is about (`order:<id>`; the event id when its type has no ordering key). Null on a row an older toko wrote. */
  subject: string | null;
  /** The order rows were written in (a sequence; bigint, so a string from the driver). */
  seq: string;
  occurred_at: Date;
  status: 'pending' | 'delivered' | 'dead';
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  delivered_at: Date | null;
}

/**
 * Moves a module's outbox rows onto the event bus. Rows are claimed with a
 * short lease by one statement (`FOR UPDATE SKIP LOCKED`), so several
 * processes of one module can relay side by side, and no transaction stays
 * open while the bus delivers; the delivered ones of a batch are marked by
 * one statement too. A claim takes only the oldest pending row of each
 * subject, so however many relays run, one subject's events go out one at a
 * time and in the order they were written. Woken after commits, and polling
 * for rows a crash left behind. Failed deliveries are retried with
 * exponential backoff (holding back the later events of their subject);
 * after `maxAttempts` the row is `dead`, with its last error, until replayed.
 */
export class OutboxRelay {
  private readonly o: Required<OutboxRelayOptions>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private passes = 0;

  constructor(opts: OutboxRelayOptions) {
    this.o = { batchSize: 100, leaseSeconds: 30, concurrency: 1, ...opts };
    if (this.o.concurrency < 1) throw new Error('concurrency must be at least 1');
    if (this.o.maxAttempts < 1) throw new Error('maxAttempts must be at least 1');
    if (this.o.pollMs < 10) throw new Error('pollMs must be at least 10');
  }

  private table(): string {
    return `"${this.o.schema}"."outbox"`;
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), this.o.pollMs);
    this.timer.unref();
    this.wake();
  }

  /** Deliver soon; several wakes while a pass runs make one more pass. */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if (this.again && !this.stopped) {
        this.again = false;
        this.wake();
      }
    });
  }

  /** Runs passes until nothing due is left; for tests and shutdown. */
  async flush(): Promise<void> {
    while (this.running) await this.running;
    await this.drain();
  }

  /**
   * Stops polling and waits for the pass in progress, but not forever: a
   * pass stuck on a database that stopped answering must not hold up
   * shutdown, and its claimed rows are retried once their lease runs out.
   */
  async stop(waitMs = 5000): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    if (this.running) await Promise.race([this.running.catch(() => undefined), sleep(waitMs)]);
  }

  private async drain(): Promise<void> {
    try {
      // Again while a batch was full, or while a delivered row left a later one of its subject behind (claimable now).
      for (
        let p = await this.pass();
        (p.claimed === this.o.batchSize || p.more) && !this.stopped;
        p = await this.pass()
      );
      if (++this.passes % 100 === 1) await this.prune();
    } catch (err) {
      // A database that is away is an outage (retried at the next poll, alerted on elsewhere), not a fault of the relay.
      if (isStoreOutage(err))
        this.o.logger.warn(
          { err: errorMessage(err), module: this.o.module },
          'outbox relay pass waits for its database',
        );
      else this.o.logger.error({ err, module: this.o.module }, 'outbox relay pass failed');
    }
  }

  /**
   * One batch: claim, deliver each, record the outcomes. Returns how many
   * rows it claimed, and whether a delivered one has a later pending row of
   * its subject (which this claim could not take).
   */
  private async pass(): Promise<{ claimed: number; more: boolean }> {
    const t = this.table();
    // Only the oldest pending row of a subject: a later one waits while an earlier one is pending — leased to
    // another relay, or waiting for its retry — so two relays never hold two events of one subject. A row
    // without a subject (written by an older toko) is ordered on its own.
    const rows = await this.o.sql.query<OutboxRow & { more: boolean }>(
      `update ${t} set "locked_until" = now() + make_interval(secs => $1), "attempts" = "attempts" + 1
       where "id" in (
         select o."id" from ${t} as o
         where o."status" = 'pending' and o."next_attempt_at" <= now() and (o."locked_until" is null or o."locked_until" < now())
           and not exists (select 1 from ${t} as e where e."subject" = o."subject" and e."status" = 'pending' and e."seq" < o."seq")
         order by o."seq" limit $2 for update of o skip locked)
       returning *, exists (select 1 from ${t} as n where n."subject" = ${t}."subject" and n."status" = 'pending' and n."seq" > ${t}."seq") as "more"`,
      [this.o.leaseSeconds, this.o.batchSize],
      `${this.o.schema}.outbox.claim`,
    );
    if (rows.length === 0) return { claimed: 0, more: false };
    rows.sort((a, b) => Number(a.seq) - Number(b.seq));
    // Different subjects side by side; rows without a subject column may still share one (in their payload): in order.
    const lanes = new Map<string, { row: OutboxRow; event: EventEnvelope; more: boolean }[]>();
    for (const { more, ...row } of rows) {
      const event = toEnvelope(row, this.o.module, this.o.events);
      const key = event.subject ?? event.id;
      lanes.set(key, [...(lanes.get(key) ?? []), { row, event, more }]);
    }
    const queue = [...lanes.values()];
    const delivered: string[] = [];
    let more = false;
    await Promise.all(
      Array.from({ length: Math.min(this.o.concurrency, queue.length) }, async () => {
        for (let lane = queue.shift(); lane; lane = queue.shift()) {
          for (const d of lane) {
            if (!(await this.deliver(d.row, d.event))) continue;
            delivered.push(d.row.id);
            more ||= d.more;
          }
        }
      }),
    );
    if (delivered.length) {
      await this.o.sql.query(
        `update ${t} set "status" = 'delivered', "delivered_at" = now(), "locked_until" = null, "last_error" = null where "id" = any($1::uuid[])`,
        [delivered],
        `${this.o.schema}.outbox.delivered`,
      );
    }
    return { claimed: rows.length, more };
  }

  /** Publishes one event; on failure records the retry or the death of the row. True when delivered. */
  private async deliver(row: OutboxRow, event: EventEnvelope): Promise<boolean> {
    try {
      // The publish span continues the trace of the request that recorded the event; consumers continue from it.
      await inSpan(
        `publish ${row.type}`,
        {
          kind: SpanKind.PRODUCER,
          parent: contextFrom(row.trace_context),
          attributes: { 'messaging.operation.type': 'send', 'toko.event.id': row.id, 'toko.event.type': row.type },
        },
        () =>
          this.o.bus.publish(
            { ...event, traceparent: currentTraceparent() ?? row.trace_context },
            { attempt: row.attempts, maxAttempts: this.o.maxAttempts },
          ),
      );
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (row.attempts >= this.o.maxAttempts) {
        await this.o.sql.query(
          `update ${this.table()} set "status" = 'dead', "locked_until" = null, "last_error" = $1 where "id" = $2`,
          [message, row.id],
        );
        this.o.logger.error(
          { eventId: row.id, type: row.type, attempts: row.attempts, err: message },
          'event is dead after its last attempt',
        );
      } else {
        const delay = this.o.backoffMs * 2 ** (row.attempts - 1) * (0.75 + Math.random() * 0.5);
        await this.o.sql.query(
          `update ${this.table()} set "next_attempt_at" = now() + make_interval(secs => $1), "locked_until" = null, "last_error" = $2 where "id" = $3`,
          [delay / 1000, message, row.id],
        );
        this.o.logger.warn(
          { eventId: row.id, type: row.type, attempt: row.attempts, err: message },
          'event delivery failed; will retry',
        );
      }
      return false;
    }
  }

  private async prune(): Promise<void> {
    await this.o.sql.query(
      `delete from ${this.table()} where "status" = 'delivered' and "delivered_at" < now() - make_interval(hours => $1)`,
      [this.o.retentionHours],
    );
  }

  async list(
    status: OutboxRow['status'],
    page: { skip: number; limit: number },
  ): Promise<{ items: OutboxRow[]; total: number }> {
    const items = await this.o.sql.query<OutboxRow>(
      `select * from ${this.table()} where "status" = $1 order by "occurred_at" desc limit $2 offset $3`,
      [status, page.limit, page.skip],
    );
    const [count] = await this.o.sql.query<{ n: string }>(
      `select count(*) as n from ${this.table()} where "status" = $1`,
      [status],
    );
    return { items, total: Number(count?.n ?? 0) };
  }

  /** Puts dead events back in line (one, or all when no id); returns how many. */
  async replay(id?: string): Promise<number> {
    const rows = await this.o.sql.query(
      `update ${this.table()} set "status" = 'pending', "attempts" = 0, "next_attempt_at" = now(), "locked_until" = null
       where "status" = 'dead' ${id ? 'and "id" = $1' : ''} returning "id"`,
      id ? [id] : [],
    );
    if (rows.length) this.wake();
    return rows.length;
  }

  /** Rows by status, and how long the oldest pending row has waited (0 when none is pending). */
  async backlog(): Promise<{ counts: Record<OutboxRow['status'], number>; oldestPendingSeconds: number }> {
    const rows = await this.o.sql.query<{ status: OutboxRow['status']; n: string; oldest: string | null }>(
      `select "status", count(*) as n, extract(epoch from now() - min("occurred_at")) as oldest from ${this.table()} group by "status"`,
    );
    const counts = { pending: 0, delivered: 0, dead: 0 };
    let oldestPendingSeconds = 0;
    for (const r of rows) {
      counts[r.status] = Number(r.n);
      if (r.status === 'pending') oldestPendingSeconds = Math.max(0, Number(r.oldest ?? 0));
    }
    return { counts, oldestPendingSeconds };
  }
}

function toEnvelope(row: OutboxRow, producer: string, events: Record<string, EventDef>): EventEnvelope {
  const payload = jsonColumn<unknown>(row.payload);
  return {
    id: row.id,
    type: row.type,
    version: row.version,
    occurredAt: new Date(row.occurred_at).toISOString(),
    producer,
    requestId: row.request_id,
    subject: row.subject ?? subjectOf(producer, events[row.type], row.id, payload),
    payload,
  };
}

const errorMessage = (err: unknown) => (err instanceof Error ? err.message : String(err));
