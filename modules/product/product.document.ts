import { EntitySchema } from '@mikro-orm/core';
import type { ObjectId } from 'bson';
import type { ProductRecord } from './stores/store.ts';

/** A product as a MongoDB document: the record's fields, keyed by `_id`; `id` is its hex form. */
export interface ProductDocument extends ProductRecord {
  _id: ObjectId;
}

export const ProductDocumentSchema = new EntitySchema<ProductDocument>({
  name: 'ProductDocument',
  collection: 'products',
  properties: {
    _id: { type: 'ObjectId', primary: true },
    id: { type: 'string', serializedPrimaryKey: true },
    name: { type: 'string' },
    description: { type: 'string' },
    price: { type: 'number' },
    stock: { type: 'number' },
    category: { type: 'string', index: true },
    imageUrl: { type: 'string', nullable: true },
    createdAt: { type: 'Date', index: true },
    updatedAt: { type: 'Date' },
  },
});
