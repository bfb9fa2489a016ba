/**
 * Writes an overlay for any hosting of the modules, next to the generated
 * ones or anywhere else, for extracting modules from the monolith one at a time:
 *
 *   npx tsx scripts/k8s/overlay.ts deploy/k8s/overlays/shop toko=user,order,notification toko-product=product
 *
 * Each `<deployment>=<modules>` is a Deployment (and Service) hosting those
 * modules; every module exactly once. `--database=per-module` reads
 * `<M>_DATABASE_URL` for each SQL module instead of one DATABASE_URL;
 * `--replicas=N` (default 2). Run it again after a change to the registry.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ModuleName } from '../../src/registry.ts';
import { renderGatewayTemplate } from '../generate/nginx.ts';
import { K8S_DIR, renderOverlay, topologyOf, type Topology } from './index.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');
const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const [dir, ...pairs] = args.filter((a) => !a.startsWith('--'));
if (!dir || pairs.length === 0 || pairs.some((p) => !/^[^=]+=[a-z,]+$/.test(p))) {
  process.stderr.write(
    'usage: overlay.ts <dir> <deployment>=<module,...> ... [--database=shared|per-module] [--replicas=N]\n',
  );
  process.exit(2);
}
const database = flag('database') ?? 'shared';
const replicas = Number(flag('replicas') ?? 2);
if ((database !== 'shared' && database !== 'per-module') || !Number.isInteger(replicas) || replicas < 1) {
  process.stderr.write('--database is shared or per-module, --replicas a whole number from 1\n');
  process.exit(2);
}
let topology: Topology;
try {
  topology = topologyOf(
    Object.fromEntries(pairs.map((p) => [p.split('=')[0]!, p.split('=')[1]!.split(',') as ModuleName[]])),
    { database, replicas },
  );
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
const out = path.resolve(dir);
const files = renderOverlay(topology, renderGatewayTemplate(), {
  root: path.relative(out, path.join(ROOT, K8S_DIR)),
  banner: `Written by \`npx tsx scripts/k8s/overlay.ts ${args.join(' ')}\` from the module registry: run it again rather than editing.`,
  applyAs: path.relative(process.cwd(), out) || '.',
});
mkdirSync(out, { recursive: true });
for (const [file, text] of Object.entries(files)) {
  writeFileSync(path.join(out, file), text);
  console.log(`wrote ${path.relative(process.cwd(), path.join(out, file))}`);
}
