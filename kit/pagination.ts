import { z } from 'zod';

export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

/** `skip` and `limit` query parameters; `limit` is capped at 100. */
export const pageQuery = {
  skip: z.coerce.number().int().min(0).default(0).meta({ description: 'How many items to skip' }),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_PAGE_SIZE)
    .default(DEFAULT_PAGE_SIZE)
    .meta({ description: `Page size, at most ${MAX_PAGE_SIZE}` }),
};

export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    total: z.number().int().meta({ description: 'Items matching, over all pages', example: 1 }),
    skip: z.number().int().meta({ example: 0 }),
    limit: z.number().int().meta({ example: DEFAULT_PAGE_SIZE }),
  });
}

export interface Page<T> {
  items: T[];
  total: number;
  skip: number;
  limit: number;
}
