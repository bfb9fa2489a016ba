import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { ORDER_STATUSES } from './contract.ts';

/**
 * The saga's steps, in the order an order meets them: `placed` (recorded
 * pending), `reserve_failed` (the catalogue did not answer; recovery will
 * release it), `confirmed`, `rejected`, `cancelled`, `release_failed` (stock
 * not given back yet; recovery retries), `released` (stock given back).
 */
export const ORDER_STEPS = [
  'placed',
  'reserve_failed',
  'confirmed',
  'rejected',
  'cancelled',
  'release_failed',
  'released',
] as const;
export type OrderStep = (typeof ORDER_STEPS)[number];

export interface OrderLineRecord {
  productId: string;
  name: string;
  unitPrice: number;
  quantity: number;
}

export interface Order {
  id: string;
  userId: string;
  status: (typeof ORDER_STATUSES)[number];
  lines: OrderLineRecord[];
  total: number;
  currency: string;
  rejectionReason: string | null;
  /** The product module may still hold stock for this order (pending, confirmed, or cancelled but not yet released). */
  stockHeld: boolean;
  /** The saga's last step (see ORDER_STEPS), and the error that stopped it there, if any: what staff read when an order is stuck. */
  lastStep: OrderStep;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export const OrderEntity = new EntitySchema<Order>({
  name: 'Order',
  tableName: 'orders',
  properties: {
    id: { type: 'uuid', primary: true },
    userId: { type: 'string', length: 64 },
    status: { type: 'string', length: 16 },
    lines: { type: 'json' },
    total: { type: new BigIntType('number') },
    currency: { type: 'string', length: 3 },
    rejectionReason: { type: 'string', length: 64, nullable: true },
    stockHeld: { type: 'boolean' },
    lastStep: { type: 'string', length: 32, default: 'placed' },
    lastError: { type: 'text', nullable: true },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
