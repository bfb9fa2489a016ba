import { loadConfigOrExit } from './config.ts';
import { ensureTemplate } from './db/embedded-postgres.ts';
import { createLogger } from './logger.ts';

/**
 * Run by `npm install` (the package's prepare script, after compiling): makes
 * the embedded database's template once per machine, so that the first
 * `npm start` of any clone copies a data directory instead of running initdb.
 */
const config = loadConfigOrExit();
const logger = createLogger({ level: 'info' });
if (config.embeddedTemplateDir) {
  const template = await ensureTemplate(config.embeddedTemplateDir, logger);
  process.stdout.write(`toko: embedded database template ready at ${template}\n`);
}
logger.flush();
