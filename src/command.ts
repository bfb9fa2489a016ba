import type { Logger } from 'pino';
import type { ModuleDatabase } from '../kit/module.ts';
import { Closer } from './closer.ts';
import { loadConfigOrExit, type Config, type ModuleName } from './config.ts';
import { openDatabases } from './db/databases.ts';
import { createLogger } from './logger.ts';

export interface CommandContext {
  config: Config;
  logger: Logger;
  /** The hosted modules' databases, migrated. */
  databases: Map<ModuleName, ModuleDatabase>;
}

/**
 * The frame of a one-shot command (`npm run migrate`, `npm run seed`): loads
 * the configuration (`hosts` may narrow the modules it opens), opens and
 * migrates the modules' databases, runs `work`, and closes everything. A
 * failure is one line that says what to do, as `npm start` does (`toko:
 * seeding failed: the data directory … is in use …`), and exit code 1; the
 * whole error only at debug level.
 */
export async function runCommand(
  what: string,
  work: (ctx: CommandContext) => Promise<void>,
  opts: { hosts?: (modules: ModuleName[]) => ModuleName[] } = {},
): Promise<void> {
  const loaded = loadConfigOrExit();
  const config = opts.hosts ? { ...loaded, modules: opts.hosts(loaded.modules) } : loaded;
  const logger = createLogger({ level: config.logLevel });
  const closer = new Closer(logger);
  try {
    const databases = await openDatabases(config, logger, closer, { migrate: true });
    await work({ config, logger, databases });
  } catch (err) {
    logger.debug({ err }, `${what} failed`);
    process.stderr.write(`toko: ${what} failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    await closer.run();
    logger.flush();
  }
}
