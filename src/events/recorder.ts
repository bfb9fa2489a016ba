import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { z } from 'zod';
import type { EventRecorder } from '../kit/events.ts';
import { currentRequestId } from '../kit/request-context.ts';
import { currentTraceparent } from '../kit/tracing.ts';

/**
 * A module's EventRecorder: the envelope is built here (id, version,
 * occurredAt, producer, request id), the payload checked against the
 * contract's schema, and the row written with the caller's EntityManager, so
 * it commits or rolls back with the state change.
 */
export function createEventRecorder(opts: { module: string; schema: string; events: Record<string, z.ZodType>; wake: () => void }): EventRecorder {
  return {
    async record(em: EntityManager, type: string, payload: unknown) {
      const schema = opts.events[type];
      if (!schema) throw new Error(`${opts.module} does not declare the event ${type} in its contract`);
      const checked = schema.parse(payload);
      await em.getConnection().execute(
        `insert into "${opts.schema}"."outbox" ("id", "type", "version", "payload", "request_id", "trace_context", "occurred_at") values (?, ?, 1, ?::jsonb, ?, ?, now())`,
        [randomUUID(), type, JSON.stringify(checked), currentRequestId() ?? null, currentTraceparent()],
        'run',
        em.getTransactionContext(),
      );
    },
    wake: opts.wake,
  };
}
