import { timingSafeEqual } from 'node:crypto';

/** The header that carries the shared service key on internal calls. */
export const SERVICE_KEY_HEADER = 'x-toko-service-key';

/** Constant-time comparison, so the key cannot be guessed byte by byte from response times. */
export function sameKey(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '');
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
