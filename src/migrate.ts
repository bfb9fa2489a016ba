import { Closer } from './closer.ts';
import { loadConfigOrExit } from './config.ts';
import { openDatabases } from './db/databases.ts';
import { createLogger } from './logger.ts';

/** `npm run migrate`: applies every hosted module's committed migrations, then exits. */
const config = loadConfigOrExit();
const logger = createLogger({ level: config.logLevel });
const closer = new Closer(logger);
try {
  await openDatabases(config, logger, closer, { migrate: true });
  logger.info({ modules: config.modules }, 'migrations are up to date');
} catch (err) {
  logger.error({ err }, 'migration failed');
  process.exitCode = 1;
} finally {
  await closer.run();
  logger.flush();
}
