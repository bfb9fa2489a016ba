import { parseArgs } from 'node:util';
import pino from 'pino';
import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { dropCopy, moveData, redact } from './move-data.ts';

/**
 * `npm run move-data -- <module> --to <url> [--from <url>]` moves a module's
 * data to another PostgreSQL database (the default source is where the
 * configuration says it lives: <M>_DATABASE_URL, then DATABASE_URL);
 * `npm run move-data -- <module> --drop-copy <url>` drops the old copy.
 * Prints one JSON report; a mistake is one line and exit code 1.
 */
async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { to: { type: 'string' }, from: { type: 'string' }, 'drop-copy': { type: 'string' } },
  });
  const module = positionals[0];
  if (!module || positionals.length > 1)
    throw new Error('usage: npm run move-data -- <module> --to <url> [--from <url>] | <module> --drop-copy <url>');
  const config = loadConfigOrExit();
  // Progress goes to stderr: stdout carries the one JSON report alone.
  const logger = createLogger({ level: config.logLevel, destination: pino.destination({ fd: 2, sync: true }) });
  if (values['drop-copy'] !== undefined) {
    await dropCopy({ module, url: values['drop-copy'] });
    process.stdout.write(`${JSON.stringify({ module, dropped: redact(values['drop-copy']) })}\n`);
    return;
  }
  const from = values.from ?? (config.databaseUrls as Record<string, string | undefined>)[module];
  const report = await moveData({ module, from, to: values.to, logger });
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`toko: move-data failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
