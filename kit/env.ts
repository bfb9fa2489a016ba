import { z } from 'zod';

/**
 * Pieces for reading environment variables with zod, for the kernel's
 * configuration and for each module's own `settings`. Every schema here
 * treats a blank value as unset and names what it expects in its message
 * (the message, never the value, is what a bad start-up prints).
 */
export const blankIsUnset = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);

/** A whole number from min to max; `fallback` when unset. */
export const int = (min: number, max: number, fallback: number) =>
  z.preprocess(
    blankIsUnset,
    z
      .string()
      .regex(/^-?\d+$/, `expected a whole number from ${min} to ${max}`)
      .transform(Number)
      .pipe(
        z
          .number()
          .min(min, `expected a whole number from ${min} to ${max}`)
          .max(max, `expected a whole number from ${min} to ${max}`),
      )
      .optional()
      .transform((v) => v ?? fallback),
  );

/** true/false/1/0; `fallback` when unset. */
export const bool = (fallback: boolean) =>
  z.preprocess(
    blankIsUnset,
    z
      .enum(['true', 'false', '1', '0'], { message: 'expected true or false' })
      .optional()
      .transform((v) => (v === undefined ? fallback : v === 'true' || v === '1')),
  );

/** true/false/1/0, or undefined when unset (the module decides the default). */
export const optionalBool = z.preprocess(
  blankIsUnset,
  z
    .enum(['true', 'false', '1', '0'], { message: 'expected true or false' })
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
);

export const optionalString = z.preprocess(blankIsUnset, z.string().optional());

/** One of `values`; `fallback` when unset. */
export const oneOf = <const T extends readonly [string, ...string[]]>(values: T, fallback: T[number]) =>
  z.preprocess(
    blankIsUnset,
    z
      .enum(values, {
        message: `expected ${values.length === 2 ? values.join(' or ') : `one of ${values.join(', ')}`}`,
      })
      .default(fallback as never),
  );
