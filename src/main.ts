import { loadConfigOrExit } from './config.ts';
import { startServer } from './server.ts';

const config = loadConfigOrExit();

try {
  const server = await startServer(config);
  const stop = (signal: string) => {
    server.logger.info({ signal }, 'signal received');
    server.close().then(
      () => process.exit(0),
      (err: unknown) => {
        server.logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
} catch (err) {
  process.stderr.write(`toko: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
