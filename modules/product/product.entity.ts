import { BigIntType, EntitySchema } from '@mikro-orm/core';
import type { ProductRecord } from './stores/store.ts';

/** A product row in the module's SQL schema. */
export const ProductEntity = new EntitySchema<ProductRecord>({
  name: 'Product',
  tableName: 'products',
  properties: {
    id: { type: 'string', length: 24, primary: true },
    name: { type: 'string', length: 200 },
    description: { type: 'text' },
    price: { type: new BigIntType('number') },
    stock: { type: 'integer' },
    category: { type: 'string', length: 64 },
    imageUrl: { type: 'string', length: 2048, nullable: true },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
