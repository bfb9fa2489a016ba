import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { EventDef } from '../../kit/contract.ts';
import { outboxInsert, outboxValues, type EventRecorder, type OutboxEntry } from '../../kit/events.ts';
import { currentRequestId } from '../../kit/request-context.ts';
import type { SqlTx } from '../../kit/sql.ts';
import { currentTraceparent } from '../../kit/tracing.ts';
import { subjectOf } from './routing.ts';

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
    const def = opts.events[type];
    if (!def) throw new Error(`${opts.module} does not declare the event ${type} in its contract`);
    const id = randomUUID();
    const parsed = def.payload.parse(payload);
    return {
      id,
      type,
      payload: JSON.stringify(parsed),
      requestId: currentRequestId() ?? null,
      traceContext: currentTraceparent(),
      subject: subjectOf(opts.module, def, id, parsed),
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
          `insert into "${opts.schema}"."outbox" ("id", "type", "version", "payload", "request_id", "trace_context", "subject", "occurred_at") values (?, ?, 1, ?::jsonb, ?, ?, ?, now())`,
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
