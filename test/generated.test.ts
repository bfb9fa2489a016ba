import { appendFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GENERATED, staleOutputs, writeOutputs } from '../scripts/generate/index.ts';
import { routePrefixes } from '../scripts/generate/nginx.ts';
import { adminEventRoutes } from '../src/http/admin-events.ts';
import { MODULE_DEFINITIONS, MODULE_NAMES, PRODUCERS } from '../src/registry.ts';

describe('files generated from the module registry', () => {
  for (const g of GENERATED) {
    it(`${g.file} is what npm run generate writes`, async () => {
      expect(await staleOutputs(undefined, [g]), `${g.file} is out of date: run npm run generate`).toEqual([]);
    });
  }

  describe('the comparison', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'toko-generated-'));
    afterAll(() => rmSync(root, { recursive: true, force: true }));

    it('reports a file that was edited by hand, and one that is missing, until they are written again', async () => {
      expect(await writeOutputs(root)).toEqual(GENERATED.map((g) => g.file));
      expect(await staleOutputs(root)).toEqual([]);
      const [edited, removed] = [GENERATED[0]!.file, GENERATED.at(-1)!.file];
      appendFileSync(path.join(root, edited), '# an edit by hand\n');
      rmSync(path.join(root, removed));
      expect(await staleOutputs(root)).toEqual([edited, removed]);
      await writeOutputs(root);
      expect(await staleOutputs(root)).toEqual([]);
    });
  });

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
