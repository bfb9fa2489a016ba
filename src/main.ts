import pkg from '../package.json' with { type: 'json' };
import { loadConfigOrExit } from './config.ts';
import { serviceName, startServer } from './server.ts';
import type { Tracing } from './telemetry/tracing.ts';

const config = loadConfigOrExit();
// The OpenTelemetry SDK is loaded only when tracing is asked for.
const tracing: Tracing | undefined = config.tracing
  ? (await import('./telemetry/tracing.ts')).startTracing({ serviceName: config.tracing.serviceName ?? serviceName(config), version: pkg.version, endpoint: config.tracing.endpoint })
  : undefined;

try {
  const server = await startServer(config);
  if (tracing) server.logger.info({ endpoint: config.tracing!.endpoint }, 'tracing on: spans are exported over OTLP/HTTP');
  const stop = (signal: string) => {
    server.logger.info({ signal }, 'signal received');
    server
      .close()
      .then(() => tracing?.shutdown())
      .then(
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
