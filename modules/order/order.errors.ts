import { z } from 'zod';
import { defineError } from '../../kit/errors.ts';
import { ShortLines } from '../product/contract.ts';
import { ORDER_STATUSES } from './contract.ts';

/** 409: the order was rejected because stock ran short; `items` names each short product, `orderId` the rejected order. */
export class OrderOutOfStock extends defineError(
  'ORDER.OUT_OF_STOCK',
  409,
  'Out of stock',
  z.object({ orderId: z.string().meta({ description: 'The order, recorded as rejected' }), items: ShortLines }).meta({
    example: {
      orderId: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b',
      items: [{ productId: '64d3a0000000000000000001', requested: 3, available: 1 }],
    },
  }),
) {}
/** 409: the order was rejected because a product disappeared while ordering, or the order could not complete. */
export class OrderRejected extends defineError(
  'ORDER.REJECTED',
  409,
  'Order rejected',
  z
    .object({
      orderId: z.string().meta({ description: 'The order, recorded as rejected' }),
      ids: z.array(z.string()).optional().meta({ description: 'Products that disappeared while ordering' }),
    })
    .meta({ example: { orderId: '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b', ids: ['64d3a0000000000000000001'] } }),
) {}
/** 409: only confirmed orders can be cancelled. */
export class OrderNotCancellable extends defineError(
  'ORDER.NOT_CANCELLABLE',
  409,
  'Order cannot be cancelled',
  z
    .object({ orderStatus: z.enum(ORDER_STATUSES).meta({ description: 'The status the order is in' }) })
    .meta({ example: { orderStatus: 'cancelled' } }),
) {}
/** 422: the Idempotency-Key was used before with a different body. */
export class IdempotencyKeyReused extends defineError('ORDER.IDEMPOTENCY_KEY_REUSED', 422, 'Idempotency key reused') {}
/** 409: a request with this Idempotency-Key is still being processed. */
export class IdempotencyInFlight extends defineError('ORDER.IDEMPOTENCY_IN_FLIGHT', 409, 'Request in progress') {}
/** 403: the account may not order (disabled, or gone). */
export class CustomerInactive extends defineError('ORDER.CUSTOMER_INACTIVE', 403, 'Account cannot order') {}
