// First, so that its clock marks where our code begins.
import { StartupClock } from './startup-clock.ts';
import pkg from '../package.json' with { type: 'json' };
import { loadConfigOrExit, serviceName } from './config.ts';
import { embeddedDatabaseFor } from './db/placement.ts';
import { collectGarbage } from './collect-garbage.ts';
import { createLogger } from './logger.ts';
import type { Tracing } from './telemetry/tracing.ts';

const clock = StartupClock.ofProcess();
const config = loadConfigOrExit();
// The OpenTelemetry SDK is loaded only when tracing is asked for.
const tracing: Tracing | undefined = config.tracing
  ? (await import('./telemetry/tracing.ts')).startTracing({
      serviceName: config.tracing.serviceName ?? serviceName(config),
      version: pkg.version,
      endpoint: config.tracing.endpoint,
    })
  : undefined;
const logger = createLogger({ level: config.logLevel, service: serviceName(config), pretty: config.logPretty });

/** Rejects with a plain message when the port is taken, before any migration or seed runs. */
async function portFree(port: number, host: string): Promise<void> {
  if (port === 0) return;
  const { createServer } = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `port ${port} on ${host} is in use (is toko already running? set PORT)`
            : err.message,
        ),
      ),
    );
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/** Resolves once Redis answers PING; rejects in one plain sentence after `withinMs` of refused or silent attempts. */
async function redisAnswers(url: string, withinMs: number): Promise<void> {
  const { Redis } = await import('ioredis');
  const deadline = Date.now() + withinMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    const redis = new Redis(url, {
      lazyConnect: true,
      retryStrategy: () => null,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      connectTimeout: Math.max(100, deadline - Date.now()),
    });
    redis.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    try {
      // The whole probe is bounded: a listener that accepts and never answers (a frozen or wrong endpoint) must not hang start-up.
      await Promise.race([
        redis.connect().then(() => redis.ping()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('no answer')), Math.max(100, deadline - Date.now()));
        }),
      ]);
      clearTimeout(timer);
      redis.disconnect();
      return;
    } catch (err) {
      clearTimeout(timer);
      last = err instanceof Error ? err.message : String(err);
      redis.disconnect();
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Redis at REDIS_URL does not answer after ${withinMs} ms (${last})`);
}

try {
  await portFree(config.port, config.host);
  // Redis unreachable at start is a mistake to report, not to retry forever; once running, a lost Redis is survived.
  if (config.redisUrl) await redisAnswers(config.redisUrl, Math.max(5000, config.storeTimeoutMs));
  // The embedded database starts on its own thread while the rest of toko loads.
  const database = embeddedDatabaseFor(config, logger);
  const embedded = database ? database.start().then(() => database) : Promise.resolve(undefined);
  embedded.catch(() => undefined);
  const { startServer } = await import('./server.ts');
  clock.end('load');
  const server = await startServer(config, { logger, embedded, clock });
  // Give back what start-up left behind, once the first requests are in (the readiness probe), not during them.
  setTimeout(collectGarbage, 2000).unref();
  if (tracing)
    server.logger.info({ endpoint: config.tracing!.endpoint }, 'tracing on: spans are exported over OTLP/HTTP');
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
