import type { z } from 'zod';
import { ValidationFailed, type FieldError } from './errors.ts';

/** Turns zod issues into one `{ path, message }` entry per bad field. */
export function fieldErrors(error: z.ZodError, prefix?: string): FieldError[] {
  const seen = new Set<string>();
  const out: FieldError[] = [];
  for (const issue of error.issues) {
    const parts = [...(prefix ? [prefix] : []), ...issue.path.map(String)];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...parts, key].join('.');
        if (!seen.has(path)) {
          seen.add(path);
          out.push({ path, message: 'Unknown field' });
        }
      }
      continue;
    }
    const path = parts.join('.') || (prefix ?? '');
    if (seen.has(path)) continue;
    seen.add(path);
    out.push({ path, message: issue.message });
  }
  return out;
}

/** Parses `value` with `schema` or throws a 422 `ValidationFailed` naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ValidationFailed('The request is not valid', { errors: fieldErrors(result.error, prefix) });
}
