import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { ORDER_STATUSES } from './contract.ts';

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
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
