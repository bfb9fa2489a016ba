import { Closer } from './closer.ts';
import { loadConfigOrExit } from './config.ts';
import { openDatabases } from './db/databases.ts';
import { createLogger } from './logger.ts';
import { noopMeter } from '../kit/meter.ts';
import { buildModules } from './wiring.ts';

/** `npm run seed`: adds the demo catalogue's missing products to the configured product store, then exits. */
const loaded = loadConfigOrExit();
// Only the product module, and no start-up seeding: this script seeds, and says how many it added.
const config = {
  ...loaded,
  modules: ['product' as const],
  settings: { ...loaded.settings, product: { ...loaded.settings.product, SEED_DEMO: false } },
};
const logger = createLogger({ level: config.logLevel });
const closer = new Closer(logger);
try {
  const databases = await openDatabases(config, logger, closer, { migrate: true });
  const modules = await buildModules({
    config,
    logger,
    databases,
    ports: new Map(),
    tokens: { issue: () => ({ accessToken: '', expiresIn: 0 }), jwks: () => ({ keys: [] }) },
    passwords: () => {
      throw new Error('seeding needs no passwords');
    },
    recorder: () => {
      throw new Error('seeding publishes no events');
    },
    remote: () => undefined,
    meter: () => noopMeter,
  });
  const inserted = await modules.get('product')!.seed!();
  logger.info({ inserted }, 'seeding done');
} catch (err) {
  // One line that says what to do, as `npm start` does; the whole error only at debug level.
  logger.debug({ err }, 'seeding failed');
  process.stderr.write(`toko: seeding failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
} finally {
  await closer.run();
  logger.flush();
}
