import { z } from 'zod';
import { defineError } from '../../kit/errors.ts';

/** 409: a stock adjustment would take stock below zero; names the product, its stock and the refused delta. */
export class StockConflict extends defineError(
  'PRODUCT.STOCK_CONFLICT',
  409,
  'Stock conflict',
  z
    .object({
      productId: z.string(),
      stock: z.number().int().meta({ description: 'Stock as it stands' }),
      delta: z.number().int().meta({ description: 'The adjustment refused' }),
    })
    .meta({ example: { productId: '64d3a0000000000000000001', stock: 3, delta: -5 } }),
) {}
