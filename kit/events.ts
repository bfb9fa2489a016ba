import type { EntityManager } from '@mikro-orm/core';
import { inSchema, type Sql, type SqlTx } from './sql.ts';

/** What travels for every domain event, whichever the transport. */
export interface EventEnvelope<P = unknown> {
  /** Unique; consumers deduplicate on it, BullMQ uses it as the job id. */
  id: string;
  type: string;
  version: number;
  occurredAt: string;
  /** The module whose outbox it came from. */
  producer: string;
  requestId: string | null;
  /** W3C traceparent of the span that published it, so the consumer's work joins the same trace; absent when tracing is off. */
  traceparent?: string | null;
  /** What the event is about (`order:<id>`), from the ordering key its contract declares: events with one subject are handled in order. */
  subject?: string;
  payload: P;
}

export interface DeliveryContext {
  /** 1 for the first delivery of this event to this consumer. */
  attempt: number;
  /** After this attempt the event is given up (dead) if the handler fails. */
  maxAttempts: number;
}

export type EventHandler = (event: EventEnvelope, delivery: DeliveryContext) => Promise<void>;

/** One outbox row, ready to insert with the state change it reports. */
export interface OutboxEntry {
  id: string;
  type: string;
  /** The payload as JSON, checked against the contract's schema. */
  payload: string;
  requestId: string | null;
  traceContext: string | null;
  /** What the event is about (`order:<id>`, or the event id when its type has no ordering key): the relay claims only the oldest pending row of each. */
  subject: string;
}

/** How a module publishes: into its own outbox, inside the transaction (or the statement) of the state change. */
export interface EventRecorder {
  /** Validates the payload with the contract's schema and adds the event to the outbox in `em`'s transaction. */
  record(em: EntityManager, type: string, payload: unknown): Promise<void>;
  /** The same, in a plain-SQL transaction. */
  recordIn(tx: SqlTx, type: string, payload: unknown): Promise<void>;
  /** The validated row, for a state change that writes it in its own statement (see `outboxInsert`). */
  entry(type: string, payload: unknown): OutboxEntry;
  /** After the commit: asks the relay to deliver now rather than at its next poll. */
  wake(): void;
}

/**
 * A statement that does an event's work, reading the inbox's `source` (a
 * CTE) as its own: one row when the event is new to the handler, none when
 * it was handled before (`insert into … select $3, $4 … ${inbox.source}`).
 * Its own parameters start at `$3`.
 */
export interface InboxStatement {
  text: string;
  values: readonly unknown[];
  /** Prepared once per connection under this name. */
  name?: string;
}

/**
 * A consuming module's inbox (a table the kernel makes and owns): which
 * events each of its handlers has dealt with, so that a redelivered event
 * does its work once.
 */
export interface Inbox {
  /** The `from` clause a `handleOnce` statement reads the new event through (one row, or none when handled before). */
  readonly source: string;
  /** Whether `handler` has dealt with the event. */
  handled(eventId: string, handler: string): Promise<boolean>;
  /**
   * Records that `handler` dealt with the event and does the work in one
   * statement, so both commit or neither; when the event was recorded
   * before, the work does nothing. One statement rather than a transaction
   * around two: it is on the path of every order. Resolves the work's
   * `returning` rows (none when the event was handled before).
   */
  handleOnce<R = Record<string, unknown>>(
    db: SqlTx,
    eventId: string,
    handler: string,
    work: InboxStatement,
  ): Promise<R[]>;
}

/** The CTE of `handleOnce`: the event's id when this call recorded it, nothing when it was recorded before. */
const NEW_EVENT = '"inbox"';

/** The inbox in `schema` (the kernel hands it to a consuming module as `kernel.inbox()`). */
export function createInbox(sql: Sql, schema: string): Inbox {
  const inbox = inSchema(schema)('inbox');
  return {
    source: `from ${NEW_EVENT}`,
    async handled(eventId, handler) {
      const rows = await sql.query(
        `select 1 from ${inbox} where "event_id" = $1 and "handler" = $2`,
        [eventId, handler],
        `${schema}.inbox.handled`,
      );
      return rows.length > 0;
    },
    handleOnce: (db, eventId, handler, work) =>
      db.query(
        `with ${NEW_EVENT} as (
           insert into ${inbox} ("event_id", "handler") values ($1, $2) on conflict do nothing returning "event_id")
         ${work.text}`,
        [eventId, handler, ...work.values],
        work.name,
      ),
  };
}

/** Delivers envelopes to the modules that consume them. Two implementations: in process, and BullMQ. */
export interface EventBus {
  readonly kind: 'in-process' | 'bullmq';
  /**
   * Resolves once every consumer has the event (handled in process, or safely
   * queued); rejects otherwise. `delivery` counts the outbox's attempts, for
   * handlers run in process.
   */
  publish(event: EventEnvelope, delivery: DeliveryContext): Promise<void>;
  /** Registers this process's handlers for a hosted consumer module. */
  consume(consumer: string, handlers: Record<string, EventHandler>): void;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** Which consumer modules receive each event type (from the module definitions). */
export type EventRoutes = Record<string, readonly string[]>;

/** The types routed to `consumer` that its handlers miss, and the handlers for types not routed to it. */
export function handlerMismatch(
  routes: EventRoutes,
  consumer: string,
  handlers: Record<string, EventHandler> | undefined,
): { missing: string[]; extra: string[] } {
  const routed = Object.keys(routes).filter((type) => routes[type]!.includes(consumer));
  return {
    missing: routed.filter((type) => typeof handlers?.[type] !== 'function'),
    extra: Object.keys(handlers ?? {}).filter((type) => !routed.includes(type)),
  };
}

/** Refuses a consumer whose handlers do not match the types routed to it: an event it cannot handle must never count as delivered. */
export function assertHandlersCover(
  routes: EventRoutes,
  consumer: string,
  handlers: Record<string, EventHandler>,
): void {
  const { missing, extra } = handlerMismatch(routes, consumer, handlers);
  if (missing.length || extra.length) {
    throw new Error(
      [
        missing.length ? `${consumer} has no handler for ${missing.join(', ')}` : '',
        extra.length ? `${consumer} handles ${extra.join(', ')}, which is not routed to it` : '',
      ]
        .filter(Boolean)
        .join('; '),
    );
  }
}

/**
 * `insert into <schema>.outbox … select $n… from <source>`: an outbox row
 * written by the same statement as the change it reports, in a CTE whose
 * `source` yields one row when the change happened and none otherwise.
 * Its six parameters start at `$first`; pass `outboxValues(entry)` there.
 */
export function outboxInsert(schema: string, first: number, source: string): string {
  const p = (i: number) => `$${first + i}`;
  return `insert into "${schema}"."outbox" ("id", "type", "version", "payload", "request_id", "trace_context", "subject", "occurred_at")
    select ${p(0)}::uuid, ${p(1)}, 1, ${p(2)}::jsonb, ${p(3)}, ${p(4)}, ${p(5)}, now() from ${source}`;
}

export const outboxValues = (e: OutboxEntry): unknown[] => [
  e.id,
  e.type,
  e.payload,
  e.requestId,
  e.traceContext,
  e.subject,
];

/** SQL for a module's outbox table, used by each module's own migration. */
export function outboxTableSql(schema: string): string[] {
  return [
    `create table "${schema}"."outbox" (
      "id" uuid not null,
      "type" varchar(100) not null,
      "version" integer not null,
      "payload" jsonb not null,
      "request_id" varchar(128) null,
      "occurred_at" timestamptz not null,
      "status" varchar(16) not null default 'pending',
      "attempts" integer not null default 0,
      "last_error" text null,
      "next_attempt_at" timestamptz not null default now(),
      "locked_until" timestamptz null,
      "delivered_at" timestamptz null,
      constraint "outbox_pkey" primary key ("id"),
      constraint "outbox_status_check" check ("status" in ('pending', 'delivered', 'dead'))
    );`,
    `create index "outbox_due_index" on "${schema}"."outbox" ("next_attempt_at") where "status" = 'pending';`,
    `create index "outbox_delivered_index" on "${schema}"."outbox" ("delivered_at") where "status" = 'delivered';`,
  ];
}

/** Adds the column that keeps the trace of the request that recorded each event (a later migration of each producer). */
export function outboxTraceColumnSql(schema: string): string[] {
  return [`alter table "${schema}"."outbox" add column "trace_context" varchar(256) null;`];
}

/**
 * Adds what the relay orders by (a later migration of each producer): the
 * event's subject, written with the row, and `seq`, the order rows were
 * written in (`occurred_at` is the transaction's start, tied within one and
 * not the commit order across two). Rows already there are numbered by
 * `occurred_at`, and given the subject `subjectSql` computes from their type
 * and payload (reading the row as `o`; null: ordered on its own, as a row an
 * older writer adds).
 */
export function outboxSubjectColumnsSql(schema: string, subjectSql: string): string[] {
  const t = `"${schema}"."outbox"`;
  return [
    `alter table ${t} add column "subject" varchar(255) null, add column "seq" bigint null;`,
    `create sequence "${schema}"."outbox_seq_seq" owned by ${t}."seq";`,
    `update ${t} as o set "seq" = n."seq", "subject" = ${subjectSql}
       from (select "id", row_number() over (order by "occurred_at", "id") as "seq" from ${t}) as n where o."id" = n."id";`,
    `select setval('"${schema}"."outbox_seq_seq"', (select coalesce(max("seq"), 0) + 1 from ${t}), false);`,
    `alter table ${t} alter column "seq" set default nextval('"${schema}"."outbox_seq_seq"'), alter column "seq" set not null;`,
    `create index "outbox_pending_seq_index" on ${t} ("seq") where "status" = 'pending';`,
    `create index "outbox_pending_subject_index" on ${t} ("subject", "seq") where "status" = 'pending';`,
  ];
}

/** SQL for a consuming module's inbox: which events each handler has already dealt with. */
export function inboxTableSql(schema: string): string[] {
  return [
    `create table "${schema}"."inbox" (
      "event_id" uuid not null,
      "handler" varchar(100) not null,
      "handled_at" timestamptz not null default now(),
      constraint "inbox_pkey" primary key ("event_id", "handler")
    );`,
  ];
}
