import path from 'node:path';
import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { startSplit } from './topology.ts';

/**
 * `npm run split`: the four services and the nginx gateway on loopback.
 * GATEWAY_PORT (default 8080), SPLIT_BASE_PORT (services on the next four
 * ports, default 3100), REDIS_URL (default redis://127.0.0.1:6379); other
 * variables (ADMIN_EMAIL, DATABASE_URL, LOG_LEVEL...) pass on to every service.
 * Without DATABASE_URL this process hosts one embedded PostgreSQL for all four.
 */
const config = loadConfigOrExit();
const passOn = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && /^(ADMIN_|LOG_|DATABASE_URL|SEED_DEMO|NOTIFY_|SMTP_|BCRYPT_|JWT_|SHOP_|ORDER_|EVENT_|OUTBOX_|QUEUE_)/.test(e[0])));
const topology = await startSplit({
  dataDir: path.join(config.dataDir, 'split'),
  gatewayPort: Number(process.env.GATEWAY_PORT ?? 8080),
  basePort: Number(process.env.SPLIT_BASE_PORT ?? 3100),
  redisUrl: config.redisUrl ?? 'redis://127.0.0.1:6379',
  env: { SEED_DEMO: 'true', ...passOn },
  embedded: { templateDir: config.embeddedTemplateDir, logger: createLogger({ level: config.logLevel, service: 'toko-split' }) },
  onLine: (service, line) => process.stdout.write(`${service.padEnd(12)} ${line}\n`),
});
process.stdout.write(`toko split: gateway ${topology.gatewayUrl}\n`);
const stop = () => void topology.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
