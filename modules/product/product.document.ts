import { EntitySchema } from '@mikro-orm/core';
import type { ObjectId } from 'bson';

/** A product as a MongoDB document; `id` is the hex form of `_id`. */
export interface ProductDocument {
  _id: ObjectId;
  id: string;
  name: string;
  description: string;
  price: number;
  stock: number;
  category: string;
  imageUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
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
