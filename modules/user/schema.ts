import { inSchema } from '../../kit/sql.ts';

/** The PostgreSQL schema that holds every table of the user module: named here only. */
export const SCHEMA = 'users';
/** `table('users')` → `"users"."users"`. */
export const table = inSchema(SCHEMA);
