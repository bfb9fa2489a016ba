import { z } from 'zod';
import { defineContract, type PortOf } from '../../kit/contract.ts';
import { defineError } from '../../kit/errors.ts';
import { idText } from '../../kit/values.ts';

/** Product ids are 24-hex ObjectId strings, whichever store holds them. */
export const ProductId = z
  .string()
  .toLowerCase()
  .regex(/^[0-9a-f]{24}$/, 'Must be a product id (24 hex characters)');

/** What another module needs of a product at a moment in time. Money in integer minor units. */
export const ProductSnapshot = z.object({
  id: z.string(),
  name: z.string(),
  price: z.number().int(),
  currency: z.string().length(3),
  stock: z.number().int(),
});
export type ProductSnapshot = z.infer<typeof ProductSnapshot>;

/** A product's name and price, without stock: what an order shows before its reservation. */
export const ProductPrice = z.object({
  id: z.string(),
  name: z.string(),
  price: z.number().int(),
  currency: z.string().length(3),
});
export type ProductPrice = z.infer<typeof ProductPrice>;

export const StockLine = z.object({ productId: ProductId, quantity: z.number().int().min(1) });
export type StockLine = z.infer<typeof StockLine>;

/** A reserved line with the name and unit price the reservation was made at. */
export const ReservedLine = z.object({
  productId: z.string(),
  quantity: z.number().int(),
  name: z.string(),
  unitPrice: z.number().int(),
  currency: z.string().length(3),
});
export type ReservedLine = z.infer<typeof ReservedLine>;

export const Reservation = z.object({ reservationId: z.string(), lines: z.array(ReservedLine) });
export type Reservation = z.infer<typeof Reservation>;

/** A product as the public API shows it. Money in integer minor units of `currency`. */
export const ProductDto = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string(),
    price: z.number().int(),
    currency: z.string(),
    stock: z.number().int(),
    category: z.string(),
    imageUrl: z.string().nullable(),
    createdAt: z.string().meta({ format: 'date-time' }),
    updatedAt: z.string().meta({ format: 'date-time' }),
  })
  .meta({
    id: 'Product',
    example: {
      id: '64d3a0000000000000000001',
      name: 'Kopi Gayo Arabika 250 g',
      description: 'Biji kopi arabika dari dataran tinggi Gayo.',
      price: 8_500_000,
      currency: 'IDR',
      stock: 40,
      category: 'makanan-minuman',
      imageUrl: null,
      createdAt: '2026-12-01T02:00:00.000Z',
      updatedAt: '2026-12-03T08:16:00.000Z',
    },
  });
export type ProductDto = z.infer<typeof ProductDto>;

/** 409; `items` names each short product with what was asked and what is available. */
export const ShortLines = z
  .array(z.object({ productId: z.string(), requested: z.number().int(), available: z.number().int() }))
  .meta({ description: 'Each short product: what was asked and what is in stock' });
export class OutOfStock extends defineError(
  'PRODUCT.OUT_OF_STOCK',
  409,
  'Out of stock',
  z
    .object({ items: ShortLines })
    .meta({ example: { items: [{ productId: '64d3a0000000000000000001', requested: 3, available: 1 }] } }),
) {}
/** 404; `ids` lists the product ids that do not exist. */
export class ProductNotFound extends defineError(
  'PRODUCT.NOT_FOUND',
  404,
  'Product not found',
  z
    .object({ ids: z.array(z.string()).meta({ description: 'The product ids that do not exist' }) })
    .meta({ example: { ids: ['64d3a0000000000000000009'] } }),
) {}
/** 409; the reservation id was released before (or instead of) being reserved, so it can never reserve. */
export class ReservationClosed extends defineError('PRODUCT.RESERVATION_CLOSED', 409, 'Reservation closed') {}

export const productContract = defineContract({
  name: 'product',
  methods: {
    /** Snapshots of the products that exist; unknown ids are left out. Idempotent. */
    getProducts: {
      input: z.object({ ids: z.array(idText()).max(500) }),
      output: z.array(ProductSnapshot),
      idempotent: true,
    },
    /**
     * Names and prices of the products that exist (unknown ids left out),
     * from memory where the product module has them: not changed by stock
     * moving, and up to PRODUCT_CACHE_TTL_MS old in another process. Idempotent.
     */
    getPrices: {
      input: z.object({ ids: z.array(idText()).max(500) }),
      output: z.array(ProductPrice),
      idempotent: true,
    },
    /**
     * Takes stock for every line or for none. Idempotent per reservationId: a
     * repeat returns the first result. Throws OutOfStock, ProductNotFound, ReservationClosed.
     */
    reserveStock: {
      input: z.object({ reservationId: z.string().min(1).max(64), items: z.array(StockLine).min(1).max(100) }),
      output: Reservation,
      idempotent: true,
    },
    /**
     * Gives back exactly what the reservation took. Idempotent; releasing an
     * unknown id closes it so a late reserve with that id is refused.
     */
    releaseStock: {
      input: z.object({ reservationId: z.string().min(1).max(64) }),
      output: z.object({ released: z.boolean() }),
      idempotent: true,
    },
  },
  events: {},
  errors: [OutOfStock, ProductNotFound, ReservationClosed],
});

export type ProductPort = PortOf<typeof productContract>;
