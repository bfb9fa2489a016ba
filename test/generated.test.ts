import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENERATED, routePrefixes } from '../scripts/generate.ts';
import { adminEventRoutes } from '../src/http/admin-events.ts';
import { MODULE_DEFINITIONS, MODULE_NAMES, PRODUCERS } from '../src/registry.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

describe('files generated from the module registry', () => {
  for (const g of GENERATED) {
    it(`${g.file} is what npm run generate writes`, async () => {
      const committed = readFileSync(path.join(ROOT, g.file), 'utf8');
      expect(committed === (await g.render()), `${g.file} is out of date: run npm run generate`).toBe(true);
    });
  }

  it('route every public path of every module to the service hosting it, and to no other', () => {
    const prefixes = MODULE_NAMES.flatMap((m) => routePrefixes(m).map((p) => ({ m, p })));
    // nginx picks the longest matching prefix.
    const routedTo = (url: string) =>
      prefixes.filter(({ p }) => url === p || url.startsWith(p)).sort((a, b) => b.p.length - a.p.length)[0]?.m;
    for (const m of MODULE_NAMES) {
      const paths = [
        ...MODULE_DEFINITIONS[m].routes.map((r) => r.path),
        ...(PRODUCERS.includes(m) ? adminEventRoutes(m).map((r) => r.path) : []),
      ];
      for (const p of paths) expect(routedTo(p.replace(/:[a-z]+/gi, 'x1')), p).toBe(m);
    }
    expect(routedTo('/api/v1/admin/orders')).toBe('order');
  });
});
