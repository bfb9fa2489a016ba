import { defineError } from '../../src/kit/errors.ts';

/** 409: the order was rejected because stock ran short; `items` names each short product, `orderId` the rejected order. */
export class OrderOutOfStock extends defineError('ORDER.OUT_OF_STOCK', 409, 'Out of stock') {}
/** 409: the order was rejected because a product disappeared while ordering, or the order could not complete. */
export class OrderRejected extends defineError('ORDER.REJECTED', 409, 'Order rejected') {}
/** 409: only confirmed orders can be cancelled. */
export class OrderNotCancellable extends defineError('ORDER.NOT_CANCELLABLE', 409, 'Order cannot be cancelled') {}
/** 422: the Idempotency-Key was used before with a different body. */
export class IdempotencyKeyReused extends defineError('ORDER.IDEMPOTENCY_KEY_REUSED', 422, 'Idempotency key reused') {}
/** 409: a request with this Idempotency-Key is still being processed. */
export class IdempotencyInFlight extends defineError('ORDER.IDEMPOTENCY_IN_FLIGHT', 409, 'Request in progress') {}
/** 403: the account may not order (disabled, or gone). */
export class CustomerInactive extends defineError('ORDER.CUSTOMER_INACTIVE', 403, 'Account cannot order') {}
