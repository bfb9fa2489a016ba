import { z } from 'zod';
import { NotFound } from '../../kit/errors.ts';
import { pageOf, pageQuery } from '../../kit/pagination.ts';
import { routesFor, type AnyRouteDef } from '../../kit/route.ts';
import type { OutboxRelay, OutboxRow } from '../events/outbox-relay.ts';
import { idText, isUuid, jsonColumn } from '../../kit/values.ts';

export interface AdminEventsRuntime {
  relay: OutboxRelay;
}

const route = routesFor<AdminEventsRuntime>();

const OutboxEvent = z
  .object({
    id: z.string(),
    type: z.string(),
    version: z.number().int(),
    payload: z.unknown(),
    requestId: z.string().nullable(),
    occurredAt: z.string(),
    status: z.enum(['pending', 'delivered', 'dead']),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    deliveredAt: z.string().nullable(),
  })
  .meta({
    id: 'OutboxEvent',
    example: {
      id: '0193a1b2-0000-7000-8000-0000000000e1',
      type: 'order.confirmed',
      version: 1,
      payload: { id: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b', status: 'confirmed' },
      requestId: 'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607',
      occurredAt: '2026-12-03T08:16:00.000Z',
      status: 'dead',
      attempts: 20,
      lastError: 'connect ECONNREFUSED (SMTP)',
      deliveredAt: null,
    },
  });

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

const toDto = (r: OutboxRow) => ({
  id: r.id,
  type: r.type,
  version: r.version,
  payload: jsonColumn<unknown>(r.payload),
  requestId: r.request_id,
  occurredAt: iso(r.occurred_at)!,
  status: r.status,
  attempts: r.attempts,
  lastError: r.last_error,
  deliveredAt: iso(r.delivered_at),
});

/** Admin routes over one module's outbox: list by status, replay one dead event, replay all dead events. */
export function adminEventRoutes(module: string): AnyRouteDef<AdminEventsRuntime>[] {
  const base = `/api/v1/admin/events/${module}`;
  const Module = module.charAt(0).toUpperCase() + module.slice(1);
  return [
    route({
      method: 'get',
      operationId: `list${Module}OutboxEvents`,
      path: base,
      summary: `Events in the ${module} module's outbox (admin)`,
      description: '`status=dead` lists events given up after their last attempt, with the last error.',
      tags: ['admin'],
      access: 'admin',
      query: z.strictObject({ ...pageQuery, status: z.enum(['pending', 'delivered', 'dead']).default('dead') }),
      response: pageOf(OutboxEvent).meta({ id: 'OutboxEventPage' }),
      handler: async ({ query }, { relay }) => {
        const page = await relay.list(query.status, query);
        return { items: page.items.map(toDto), total: page.total, skip: query.skip, limit: query.limit };
      },
    }),
    route({
      method: 'post',
      operationId: `replay${Module}DeadEvent`,
      path: `${base}/:id/replay`,
      summary: `Deliver one dead ${module} event again (admin)`,
      description: 'Safe: every handler is idempotent.',
      tags: ['admin'],
      access: 'admin',
      params: z.strictObject({ id: idText() }),
      response: z.object({ replayed: z.number().int().meta({ description: 'Events delivered again', example: 1 }) }),
      problems: [NotFound],
      handler: async ({ params }, { relay }) => {
        const replayed = isUuid(params.id) ? await relay.replay(params.id) : 0;
        if (!replayed) throw new NotFound(`No dead event with id ${params.id}`);
        return { replayed };
      },
    }),
    route({
      method: 'post',
      operationId: `replay${Module}DeadEvents`,
      path: `${base}/replay`,
      summary: `Deliver every dead ${module} event again (admin)`,
      tags: ['admin'],
      access: 'admin',
      response: z.object({ replayed: z.number().int().meta({ description: 'Events delivered again', example: 1 }) }),
      handler: async (_input, { relay }) => ({ replayed: await relay.replay() }),
    }),
  ];
}
