import { z } from 'zod';
import { pageOf, pageQuery } from '../../kit/pagination.ts';
import { routesFor } from '../../kit/route.ts';
import { idText } from '../../kit/values.ts';
import { ProductDto, ProductNotFound } from './contract.ts';
import { StockConflict } from './product.errors.ts';
import type { ProductService } from './product.service.ts';
import { PRODUCT_SORTS } from './stores/store.ts';

export interface ProductRuntime {
  service: ProductService;
}

const route = routesFor<ProductRuntime>();

/** Prices are integer minor units of the shop currency (IDR: Rp 15.000 is 1500000). */
const price = z.number().int('Must be a whole number of minor units').min(0).max(1e13).meta({ example: 1500000 });
const name = z.string().trim().min(1, 'Must not be empty').max(200).meta({ example: 'Kopi Gayo Arabika 250 g' });
const description = z.string().trim().max(5000).meta({ example: 'Biji kopi arabika dari dataran tinggi Gayo.' });
const categoryName = z
  .string()
  .trim()
  .toLowerCase()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'Must be 1-64 characters of a-z, 0-9 and -');
const category = categoryName.meta({ example: 'makanan-minuman' });
const imageUrl = z
  .url({ protocol: /^https?$/, message: 'Must be an http(s) URL' })
  .max(2048)
  .nullable()
  .meta({ example: 'https://cdn.example/kopi.jpg' });

export const NewProductBody = z
  .strictObject({
    name,
    description: description.default(''),
    price,
    stock: z.number().int().min(0).max(1e9).default(0),
    category,
    imageUrl: imageUrl.default(null),
  })
  .meta({
    id: 'NewProduct',
    example: {
      name: 'Kopi Gayo Arabika 250 g',
      description: 'Biji kopi arabika dari dataran tinggi Gayo.',
      price: 8_500_000,
      stock: 40,
      category: 'makanan-minuman',
      imageUrl: null,
    },
  });

export const ProductPatchBody = z
  .strictObject({ name, description, price, category, imageUrl })
  .partial()
  .refine((v) => Object.keys(v).length > 0, 'Give at least one field to change')
  .meta({
    id: 'ProductPatch',
    description: 'Stock is changed only through POST /api/v1/products/{id}/stock.',
    example: { price: 7_900_000 },
  });

const StockBody = z
  .strictObject({
    delta: z
      .number()
      .int()
      .min(-1e9)
      .max(1e9)
      .refine((d) => d !== 0, 'Must not be 0')
      .meta({ example: 25 }),
  })
  .meta({ id: 'StockAdjustment', example: { delta: 25 } });

const idParams = z.strictObject({ id: idText() });

export const LIST_LIMIT = 100;

export const productRoutes = [
  route({
    method: 'get',
    operationId: 'listProducts',
    path: '/api/v1/products',
    summary: 'Browse the catalogue',
    description: `Filter by category, search the name (case-insensitive), sort; \`limit\` at most ${LIST_LIMIT}.`,
    tags: ['products'],
    access: 'public',
    query: z.strictObject({
      ...pageQuery,
      // No example here: Swagger UI would pre-fill the filter with it.
      category: categoryName.optional().meta({ description: 'Only this category (e.g. makanan-minuman)' }),
      q: z.string().trim().min(1).max(100).optional().meta({ description: 'Case-insensitive part of the name' }),
      sort: z
        .enum(PRODUCT_SORTS)
        .default('-createdAt')
        .meta({ description: 'Field to sort by; a leading - sorts descending' }),
    }),
    response: pageOf(ProductDto).meta({ id: 'ProductPage' }),
    handler: ({ query }, { service }) => service.list(query),
  }),
  route({
    method: 'get',
    operationId: 'getProduct',
    path: '/api/v1/products/:id',
    summary: 'One product',
    tags: ['products'],
    access: 'public',
    params: idParams,
    response: ProductDto,
    problems: [ProductNotFound],
    handler: ({ params }, { service }) => service.get(params.id),
  }),
  route({
    method: 'post',
    operationId: 'createProduct',
    path: '/api/v1/products',
    summary: 'Add a product (admin)',
    tags: ['products'],
    access: 'admin',
    body: NewProductBody,
    status: 201,
    response: ProductDto,
    handler: ({ body }, { service }) => service.create(body),
  }),
  route({
    method: 'patch',
    operationId: 'updateProduct',
    path: '/api/v1/products/:id',
    summary: 'Change a product (admin)',
    tags: ['products'],
    access: 'admin',
    params: idParams,
    body: ProductPatchBody,
    response: ProductDto,
    problems: [ProductNotFound],
    handler: ({ params, body }, { service }) => service.update(params.id, body),
  }),
  route({
    method: 'delete',
    operationId: 'deleteProduct',
    path: '/api/v1/products/:id',
    summary: 'Remove a product (admin)',
    description: 'Orders keep their own snapshot of the product, so they are not affected.',
    tags: ['products'],
    access: 'admin',
    params: idParams,
    status: 204,
    response: z.void(),
    problems: [ProductNotFound],
    handler: ({ params }, { service }) => service.remove(params.id),
  }),
  route({
    method: 'post',
    operationId: 'adjustStock',
    path: '/api/v1/products/:id/stock',
    summary: 'Restock or correct stock atomically (admin)',
    description:
      'Adds `delta` (negative to take away). Answers 409 instead of letting stock go below zero, and 422 (naming how much can still be added) instead of going past 2,147,483,647.',
    tags: ['products'],
    access: 'admin',
    params: idParams,
    body: StockBody,
    response: ProductDto,
    problems: [ProductNotFound, StockConflict],
    handler: ({ params, body }, { service }) => service.adjustStock(params.id, body.delta),
  }),
];
