const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` is a UUID: ids that are not are answered as not found without asking the database. */
export const isUuid = (id: string): boolean => UUID.test(id);

/** A jsonb column read through raw SQL: the driver may hand it back parsed or as text. */
export const jsonColumn = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;
