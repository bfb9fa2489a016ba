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
  // One line that says what to do, as `npm start` does; the whole error only at debug level.
  logger.debug({ err }, 'migration failed');
  process.stderr.write(`toko: migration failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await closer.run();
  logger.flush();
}
