import { z } from 'zod';
import { Forbidden, ServiceUnavailable } from '../../kit/errors.ts';
import { pageOf, pageQuery } from '../../kit/pagination.ts';
import { routesFor } from '../../kit/route.ts';
import { idText } from '../../kit/values.ts';
import { ProductId } from '../product/contract.ts';
import { ORDER_STATUSES, OrderDto, OrderNotFound } from './contract.ts';
import {
  CustomerInactive,
  IdempotencyInFlight,
  IdempotencyKeyReused,
  OrderNotCancellable,
  OrderOutOfStock,
  OrderRejected,
} from './order.errors.ts';
import { ORDER_STEPS } from './order.entity.ts';
import type { OrderService } from './order.service.ts';

export interface OrderRuntime {
  service: OrderService;
  /** An unfinished order idle this long is stuck (ORDER_PENDING_TIMEOUT_SECONDS). */
  stuckAfterSeconds: number;
}

const OrderSagaDto = z
  .object({
    id: z.string(),
    userId: z.string(),
    status: z.enum(ORDER_STATUSES),
    stockHeld: z.boolean().meta({ description: 'The product module may still hold stock for this order' }),
    lastStep: z.enum(ORDER_STEPS),
    lastError: z.string().nullable().meta({ description: 'Why the saga stopped at its last step, if it failed there' }),
    rejectionReason: z.string().nullable(),
    createdAt: z.string().meta({ format: 'date-time' }),
    updatedAt: z.string().meta({ format: 'date-time' }),
    idleSeconds: z.number().int().meta({ description: 'Seconds since the saga last moved' }),
  })
  .meta({
    id: 'OrderSaga',
    example: {
      id: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b',
      userId: '0193a1b2-0000-7000-8000-000000000001',
      status: 'pending',
      stockHeld: true,
      lastStep: ORDER_STEPS[1],
      lastError: 'The product service cannot be reached right now',
      rejectionReason: null,
      createdAt: '2026-12-03T08:16:00.000Z',
      updatedAt: '2026-12-03T08:16:02.000Z',
      idleSeconds: 640,
    },
  });

const route = routesFor<OrderRuntime>();

const PlaceOrderBody = z
  .strictObject({
    items: z
      .array(
        z.strictObject({
          productId: ProductId,
          quantity: z.number().int('Must be a whole number').min(1, 'Must be at least 1'),
        }),
      )
      .min(1, 'Order at least one item')
      .max(100)
      .meta({
        description:
          'Lines for the same product are merged (quantities added). Limits: ORDER_MAX_LINES, ORDER_MAX_QUANTITY.',
      }),
  })
  .meta({ id: 'PlaceOrder', example: { items: [{ productId: '64d3a0000000000000000001', quantity: 2 }] } });

const idParams = z.strictObject({ id: idText() });

export const orderRoutes = [
  route({
    method: 'post',
    operationId: 'placeOrder',
    path: '/api/v1/orders',
    summary: 'Place an order',
    description: [
      'Reserves stock for every line or none. 201 with the confirmed order; 409 when stock is short (each short product named) and the order is recorded as rejected;',
      '503 with Retry-After when the catalogue cannot answer (the order is then released by the recovery pass).',
      'With `Idempotency-Key`, the same key and body from the same user get the first outcome (also a 409) for 24 h; the same key with another body is 422;',
      'a duplicate arriving while the first is still being placed waits for it (up to 10 s), then gets 409.',
    ].join(' '),
    tags: ['orders'],
    access: 'user',
    body: PlaceOrderBody,
    headers: z.object({
      'idempotency-key': z
        .string()
        .regex(/^[\x21-\x7e]{1,255}$/, 'Must be 1-255 visible ASCII characters')
        .optional()
        .meta({ description: 'Makes retries safe: one order per key per user' }),
    }),
    status: 201,
    response: OrderDto,
    problems: [
      CustomerInactive,
      OrderOutOfStock,
      OrderRejected,
      IdempotencyInFlight,
      IdempotencyKeyReused,
      ServiceUnavailable,
    ],
    handler: ({ body, headers, principal }, { service }) =>
      service.place(principal!.userId, body.items, headers['idempotency-key']),
  }),
  route({
    method: 'get',
    operationId: 'listOrders',
    path: '/api/v1/orders',
    summary: 'Your orders, newest first (admins: everyone’s, filterable by user)',
    tags: ['orders'],
    access: 'user',
    query: z.strictObject({
      ...pageQuery,
      status: z.enum(ORDER_STATUSES).optional(),
      userId: z.string().max(64).toLowerCase().optional(),
    }),
    response: pageOf(OrderDto).meta({ id: 'OrderPage' }),
    problems: [Forbidden],
    handler: ({ query, principal }, { service }) => service.list(principal!, query),
  }),
  route({
    method: 'get',
    operationId: 'getOrder',
    path: '/api/v1/orders/:id',
    summary: 'One order (yours, or any for an admin)',
    description: 'Someone else’s order answers 404, exactly like an order that does not exist.',
    tags: ['orders'],
    access: 'user',
    params: idParams,
    response: OrderDto,
    problems: [OrderNotFound],
    handler: ({ params, principal }, { service }) => service.get(params.id, principal!),
  }),
  route({
    method: 'get',
    operationId: 'listOrderSagas',
    path: '/api/v1/admin/orders',
    summary: 'Orders by saga state, with the last step and error of each (admin)',
    description: [
      'The "why is this order stuck" view. `stuck=true` keeps the orders the recovery pass has yet to finish — pending, or cancelled with stock still held —',
      'untouched for longer than ORDER_PENDING_TIMEOUT_SECONDS, oldest first. `lastStep` is one of: ' +
        ORDER_STEPS.join(', ') +
        '.',
    ].join(' '),
    tags: ['orders', 'admin'],
    access: 'admin',
    query: z.strictObject({
      ...pageQuery,
      status: z.enum(ORDER_STATUSES).optional(),
      stuck: z
        .enum(['true', 'false'])
        .optional()
        .transform((v) => v === 'true')
        .meta({ description: 'Only orders recovery has yet to finish, idle past the pending timeout' }),
    }),
    response: pageOf(OrderSagaDto).meta({ id: 'OrderSagaPage' }),
    problems: [Forbidden],
    handler: ({ query }, { service, stuckAfterSeconds }) => service.sagas(query, stuckAfterSeconds),
  }),
  route({
    method: 'post',
    operationId: 'cancelOrder',
    path: '/api/v1/orders/:id/cancel',
    summary: 'Cancel a confirmed order and give its stock back',
    tags: ['orders'],
    access: 'user',
    params: idParams,
    response: OrderDto,
    problems: [OrderNotFound, OrderNotCancellable],
    handler: ({ params, principal }, { service }) => service.cancel(params.id, principal!),
  }),
];
