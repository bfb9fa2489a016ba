const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` is a UUID: ids that are not are answered as not found without asking the database. */
export const isUuid = (id: string): boolean => UUID.test(id);

/** A jsonb column read through raw SQL: the driver may hand it back parsed or as text. */
export const jsonColumn = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

/** Control and formatting characters (line breaks, bidi overrides, zero-width joiners), and the Unicode line separators. */
export const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

/** Whether text reads as a web address: a scheme, `www.`, or a domain followed by a path. */
export const looksLikeLink = (text: string): boolean => /[a-z][a-z0-9+.-]*:\/\/|\bwww\.|\b[a-z0-9-]+\.[a-z]{2,}\//i.test(text);
