import LinkifyIt from 'linkify-it';
import tlds from 'tlds' with { type: 'json' };
import { z } from 'zod';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `id` is a UUID: ids that are not are answered as not found without asking the database. */
export const isUuid = (id: string): boolean => UUID.test(id);

/**
 * An id as it comes in from outside — a path, a query, a body, another
 * service: lower-cased at the boundary, so one id has one spelling everywhere
 * after it (the "not your own account" check, cache keys, the database).
 * UUIDs and hex ids match any case in the database, so without this `ABC…`
 * and `abc…` would be one row but two ids.
 */
export const idText = () => z.string().toLowerCase();

/** A jsonb column read through raw SQL: the driver may hand it back parsed or as text. */
export const jsonColumn = <T>(value: unknown): T => (typeof value === 'string' ? JSON.parse(value) : value) as T;

/** Control and formatting characters (line breaks, bidi overrides, zero-width joiners), and the Unicode line separators. */
export const CONTROL_OR_FORMAT = /[\p{Cc}\p{Cf}\u2028\u2029]/u;

// Every top-level domain there is (IANA's list), so `toko-verify.xyz` reads as a domain as surely as `.com` does.
const linkify = new LinkifyIt(undefined, { fuzzyLink: true, fuzzyEmail: true, fuzzyIP: true }).tlds(tlds, true);
const WWW = /\bwww\./i;

/** The longest text `carriesAddress` reads; its callers bound their fields well below it first. */
export const ADDRESS_CHECK_MAX = 1000;

/**
 * Whether text carries a web address, a domain or an e-mail address: a scheme
 * (`://`), `www.`, `toko-verify.com`, `siti@example.co.id`, an IP address.
 * Linear in the text, and refuses what is longer than ADDRESS_CHECK_MAX
 * unread: a field is bounded before any pattern runs on it.
 */
export function carriesAddress(text: string): boolean {
  if (text.length > ADDRESS_CHECK_MAX) return true;
  return text.includes('://') || WWW.test(text) || linkify.test(text);
}
