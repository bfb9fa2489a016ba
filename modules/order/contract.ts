import { z } from 'zod';
import { defineContract, defineEvent, type PortOf } from '../../src/kit/contract.ts';
import { defineError } from '../../src/kit/errors.ts';

export const ORDER_STATUSES = ['pending', 'confirmed', 'rejected', 'cancelled'] as const;

export const OrderLine = z.object({
  productId: z.string(),
  name: z.string(),
  unitPrice: z.number().int(),
  quantity: z.number().int(),
  lineTotal: z.number().int(),
});

/** An order as its owner, admins and other modules see it. Money in integer minor units. */
export const OrderDto = z
  .object({
    id: z.string(),
    userId: z.string(),
    status: z.enum(ORDER_STATUSES),
    items: z.array(OrderLine),
    total: z.number().int(),
    currency: z.string(),
    rejectionReason: z.string().nullable(),
    createdAt: z.string().meta({ format: 'date-time' }),
    updatedAt: z.string().meta({ format: 'date-time' }),
  })
  .meta({ id: 'Order' });
export type OrderDto = z.infer<typeof OrderDto>;

export class OrderNotFound extends defineError('ORDER.NOT_FOUND', 404, 'Order not found') {}

export const orderContract = defineContract({
  name: 'order',
  methods: {
    /** One order. Idempotent. Throws OrderNotFound. */
    getOrder: { input: z.object({ id: z.string() }), output: OrderDto, idempotent: true },
  },
  events: {
    'order.confirmed': defineEvent(OrderDto, 'id'),
    'order.cancelled': defineEvent(OrderDto, 'id'),
  },
  errors: [OrderNotFound],
});

export type OrderPort = PortOf<typeof orderContract>;
