import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ALL_MODULE_ROUTES } from '../registry.ts';

describe('request body examples', () => {
  it('are accepted by the very schema they illustrate', () => {
    const bodies = ALL_MODULE_ROUTES.filter((r) => r.body);
    expect(bodies.length).toBeGreaterThan(5);
    for (const r of bodies) {
      const example = (z.globalRegistry.get(r.body!) as { example?: unknown } | undefined)?.example;
      expect(example, `${r.method} ${r.path} has an example`).toBeDefined();
      const result = r.body!.safeParse(example);
      expect(result.success ? [] : result.error.issues, `${r.method} ${r.path}`).toEqual([]);
    }
  });
});
