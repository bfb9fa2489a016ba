import { inSchema } from '../../kit/sql.ts';

/** The PostgreSQL schema that holds every table of the order module: named here only. */
export const SCHEMA = 'orders';
/** `table('orders')` → `"orders"."orders"`. */
export const table = inSchema(SCHEMA);
