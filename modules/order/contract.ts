import { z } from 'zod';
import { defineContract, defineEvent, type PortOf } from '../../kit/contract.ts';
import { defineError } from '../../kit/errors.ts';
import { idText } from '../../kit/values.ts';

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
  .meta({
    id: 'Order',
    example: {
      id: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b',
      userId: '0193a1b2-0000-7000-8000-000000000001',
      status: 'confirmed',
      items: [
        {
          productId: '64d3a0000000000000000001',
          name: 'Kopi Gayo Arabika 250 g',
          unitPrice: 8_500_000,
          quantity: 2,
          lineTotal: 17_000_000,
        },
      ],
      total: 17_000_000,
      currency: 'IDR',
      rejectionReason: null,
      createdAt: '2026-12-03T08:16:00.000Z',
      updatedAt: '2026-12-03T08:16:00.000Z',
    },
  });
export type OrderDto = z.infer<typeof OrderDto>;

export class OrderNotFound extends defineError(
  'ORDER.NOT_FOUND',
  404,
  'Order not found',
  z
    .object({ id: z.string().meta({ description: 'The id asked for' }) })
    .meta({ example: { id: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b' } }),
) {}

export const orderContract = defineContract({
  name: 'order',
  methods: {
    /** One order. Idempotent. Throws OrderNotFound. */
    getOrder: { input: z.object({ id: idText() }), output: OrderDto, idempotent: true },
  },
  events: {
    'order.confirmed': defineEvent(OrderDto, 'id'),
    'order.cancelled': defineEvent(OrderDto, 'id'),
  },
  errors: [OrderNotFound],
});

export type OrderPort = PortOf<typeof orderContract>;
