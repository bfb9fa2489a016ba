import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { EventDef } from '../../kit/contract.ts';
import { outboxInsert, outboxValues, type EventRecorder, type OutboxEntry } from '../../kit/events.ts';
import { currentRequestId } from '../../kit/request-context.ts';
import type { SqlTx } from '../../kit/sql.ts';
import { currentTraceparent } from '../../kit/tracing.ts';

/**
 * A module's EventRecorder: the envelope is built here (id, version,
 * occurredAt, producer, request id), the payload checked against the
 * contract's schema, and the row written with the caller's transaction (or
 * statement), so it commits or rolls back with the state change.
 */
export function createEventRecorder(opts: {
  module: string;
  schema: string;
  events: Record<string, EventDef>;
  wake: () => void;
}): EventRecorder {
  const entry = (type: string, payload: unknown): OutboxEntry => {
    const schema = opts.events[type]?.payload;
    if (!schema) throw new Error(`${opts.module} does not declare the event ${type} in its contract`);
    return {
      id: randomUUID(),
      type,
      payload: JSON.stringify(schema.parse(payload)),
      requestId: currentRequestId() ?? null,
      traceContext: currentTraceparent(),
    };
  };
  const insert = outboxInsert(opts.schema, 1, '(select 1) as "one"');
  return {
    entry,
    async record(em: EntityManager, type: string, payload: unknown) {
      const e = entry(type, payload);
      await em
        .getConnection()
        .execute(
          `insert into "${opts.schema}"."outbox" ("id", "type", "version", "payload", "request_id", "trace_context", "occurred_at") values (?, ?, 1, ?::jsonb, ?, ?, now())`,
          outboxValues(e),
          'run',
          em.getTransactionContext(),
        );
    },
    async recordIn(tx: SqlTx, type: string, payload: unknown) {
      await tx.query(insert, outboxValues(entry(type, payload)));
    },
    wake: opts.wake,
  };
}
