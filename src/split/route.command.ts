import path from 'node:path';
import { parseArgs } from 'node:util';
import { route } from './route.ts';

/**
 * `npm run route -- <module> --to <addr:port,...> [--conf <file>]`: the
 * gateway's routes of one module to other replicas, by a reload. The default
 * configuration is the one `npm run split` writes (data/split/gateway/nginx.conf).
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { to: { type: 'string' }, conf: { type: 'string' } },
  });
  if (positionals.length !== 1)
    throw new Error('usage: npm run route -- <module> --to <addr:port,...> [--conf <file>]');
  const conf = values.conf ?? path.join('data', 'split', 'gateway', 'nginx.conf');
  const done = await route({ module: positionals[0]!, to: values.to, conf });
  process.stdout.write(`${JSON.stringify({ module: positionals[0], ...done, reloaded: true })}\n`);
  if (!done.readinessMoved)
    process.stderr.write(
      `toko: route: toko_any (the gateway's /health/ready) is not laid out as npm run split renders it, so it still lists the module's old servers; edit it by hand\n`,
    );
}

main().catch((err: unknown) => {
  process.stderr.write(`toko: route failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
