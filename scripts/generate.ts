/**
 * `npm run generate`: the files that follow from the module registry and the
 * configuration schemas, written from them — the gateway's nginx template,
 * the split compose file, the Prometheus config of the split topology, the
 * typed client's types and the configuration reference (the list is in
 * scripts/generate/index.ts). The output is committed; test/generated.test.ts
 * fails when a committed file differs from what this script writes.
 * `--check` only compares, and exits 1 naming each file out of date.
 */
import { staleOutputs, writeOutputs } from './generate/index.ts';

if (process.argv.includes('--check')) {
  const stale = await staleOutputs();
  for (const file of stale) console.error(`${file} is out of date: run npm run generate`);
  process.exit(stale.length > 0 ? 1 : 0);
}
for (const file of await writeOutputs()) console.log(`wrote ${file}`);
