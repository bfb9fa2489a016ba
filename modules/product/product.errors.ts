import { defineError } from '../../src/kit/errors.ts';

/** 409: a stock adjustment would take stock below zero. */
export class StockConflict extends defineError('PRODUCT.STOCK_CONFLICT', 409, 'Stock conflict') {}
