import { inSchema } from '../../kit/sql.ts';

/** The PostgreSQL schema that holds every table of the notification module: named here only. */
export const SCHEMA = 'notifications';
/** `table('notifications')` → `"notifications"."notifications"`. */
export const table = inSchema(SCHEMA);
