import path from 'node:path';
import { loadConfigOrExit } from '../config.ts';
import { createLogger } from '../logger.ts';
import { parseSplitArguments } from './replicas.ts';
import { passedOn, startSplit } from './topology.ts';

/**
 * `npm run split [-- --replicas 2 | --replicas user=2,order=3]`: the four
 * services (as many processes of each as --replicas says, one by default)
 * and the nginx gateway on loopback. GATEWAY_PORT (default 8080),
 * SPLIT_BASE_PORT (services on the next ports, default 3100), REDIS_URL
 * (default redis://127.0.0.1:6379); every other variable (ADMIN_EMAIL,
 * DATABASE_URL, OTEL_*, CORS_ORIGINS...) passes on to every service. Without
 * DATABASE_URL this process hosts one embedded PostgreSQL for all of them. A
 * service process that exits without being stopped is started again.
 */
let replicas;
try {
  ({ replicas } = parseSplitArguments(process.argv.slice(2)));
} catch (err) {
  process.stderr.write(`toko split: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
const config = loadConfigOrExit();
const { env, dropped } = passedOn(process.env);
const logger = createLogger({ level: config.logLevel, service: 'toko-split' });
if (dropped.length > 0)
  logger.warn({ dropped }, 'these variables are set per service by the launcher, so yours are not passed on');
// A launch that cannot start (a port taken by a split already running, say) says why in one line, not a stack.
const topology = await startSplit({
  dataDir: path.join(config.dataDir, 'split'),
  gatewayPort: Number(process.env.GATEWAY_PORT ?? 8080),
  basePort: Number(process.env.SPLIT_BASE_PORT ?? 3100),
  redisUrl: config.redisUrl ?? 'redis://127.0.0.1:6379',
  replicas,
  restart: true,
  env,
  embedded: { templateDir: config.embeddedTemplateDir, logger },
  onLine: (service, line) => process.stdout.write(`${service.padEnd(12)} ${line}\n`),
}).catch((err: unknown) => {
  process.stderr.write(`toko split: could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
process.stdout.write(
  [
    `toko split: gateway ${topology.gatewayUrl} (API, /docs, /health/ready for every service)`,
    ...topology.services.flatMap((s) =>
      Array.from({ length: topology.replicas(s) }, (_, i) => {
        const label = topology.replicas(s) === 1 ? s : `${s}#${i + 1}`;
        return `toko split: ${label.padEnd(12)} ${topology.serviceUrl(s, i + 1)}`;
      }),
    ),
    '',
  ].join('\n'),
);
const stop = () => void topology.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
