import type { DemoData } from '../kit/module.ts';
import { noopMeter } from '../kit/meter.ts';
import { processSharedState } from '../kit/shared.ts';
import { runCommand } from './command.ts';
import { MODULE_DEFINITIONS } from './registry.ts';
import { buildModules } from './wiring.ts';

const demoData = (name: keyof typeof MODULE_DEFINITIONS) =>
  MODULE_DEFINITIONS[name].seed as DemoData<unknown> | undefined;

/**
 * `npm run seed`: adds what is missing of the demo data of every hosted
 * module that has some (the product module's catalogue), then exits. Only
 * those modules are opened and built; none is started.
 */
await runCommand(
  'seeding',
  async ({ config, logger, databases }) => {
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
      shared: processSharedState(),
    });
    for (const [module, instance] of modules) {
      const inserted = await demoData(module)!.load(instance.runtime);
      logger.info({ module, inserted }, 'seeding done');
    }
    if (modules.size === 0) logger.info({ modules: config.modules }, 'no hosted module has demo data');
  },
  { hosts: (modules) => modules.filter((m) => demoData(m)) },
);
