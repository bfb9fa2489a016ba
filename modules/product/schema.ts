import { inSchema } from '../../kit/sql.ts';

/** The PostgreSQL schema that holds every table of the product module: named here only. */
export const SCHEMA = 'products';
/** `table('products')` → `"products"."products"`. */
export const table = inSchema(SCHEMA);
