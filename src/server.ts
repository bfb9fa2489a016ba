import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Router } from './http/router.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import pkg from '../package.json' with { type: 'json' };
import { createApp } from './app.ts';
import { loadSigningKeys } from './auth/keys.ts';
import { createPasswordPool, type PasswordPool } from './auth/passwords.ts';
import { createRemoteVerifier } from './auth/remote-jwks.ts';
import { accountChecked, createTokenVerifier, createTokenIssuer, type TokenVerifier } from './auth/tokens.ts';
import type { TokenIssuer } from '../kit/auth.ts';
import { createRemotes, registerBreakerMetrics } from './remotes.ts';
import { serveContract } from '../adapters/http/contract-server.ts';
import { serviceName, type Config, type ModuleName } from './config.ts';
import { UserNotFound, type userContract } from '../modules/user/contract.ts';
import type { PortOf } from '../kit/contract.ts';
import type { EmbeddedPostgres } from './db/embedded-postgres.ts';
import { Closer } from './closer.ts';
import { openDatabases } from './db/databases.ts';
import { healthRoutes, type HealthCheck } from './http/health.ts';
import { createMetrics, serveMetrics } from './http/metrics.ts';
import type { BoundRoute } from './http/routes.ts';
import type { ModuleDatabase } from '../kit/module.ts';
import { createLogger } from './logger.ts';
import { documentedRoutes } from './api-document.ts';
import { EVENT_DEFINITIONS, EVENT_ROUTES, MODULE_DEFINITIONS, TOKEN_ISSUER } from './registry.ts';
import { routingProblems } from './events/routing.ts';
import { createEventing, type Eventing } from './events/eventing.ts';
import { registerOutboxMetrics } from './events/metrics.ts';
import { instrumentHandlers, registerPoolMetrics, registerQueueMetrics, registryMeter } from './telemetry/metrics.ts';
import { adminEventRoutes } from './http/admin-events.ts';
import { QUEUES_PATH } from './http/queues-route.ts';
import { buildModules, type AnyModuleInstance, type Ports } from './wiring.ts';

export interface RunningServer {
  url: string;
  port: number;
  /** Where /metrics is served when it has a listener of its own (METRICS_PORT). */
  metricsUrl?: string;
  server: Server;
  /** The mounted routes, for introspection (the OpenAPI coverage test). */
  router: Router;
  logger: Logger;
  databases: Map<ModuleName, ModuleDatabase>;
  /** The hosted modules, for introspection in tests (their runtimes). */
  modules: Map<ModuleName, AnyModuleInstance>;
  eventing: Eventing;
  ports: Ports;
  /** Stops accepting, lets in-flight requests finish (bounded), then closes modules and databases. Idempotent. */
  close(): Promise<void>;
}

/** The composition root: decides what this process hosts, wires it, and listens. */
export interface StartOptions {
  logger?: Logger;
  /** What tests replace, per module: `{ notification: { transport } }` (a mail transport failing on purpose). */
  overrides?: Partial<Record<ModuleName, Record<string, unknown>>>;
  /** The embedded database, being started by the caller already (the process entry starts it while the rest loads). */
  embedded?: Promise<EmbeddedPostgres | undefined>;
}

export { serviceName };

export async function startServer(config: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const logger =
    opts.logger ?? createLogger({ level: config.logLevel, service: serviceName(config), pretty: config.logPretty });
  const closer = new Closer(logger);
  try {
    return await compose(config, logger, closer, opts);
  } catch (err) {
    await closer.run();
    throw err;
  }
}

/**
 * Where the user module lives here, tokens are signed and verified with the
 * local key pair; elsewhere they are verified with the public keys the user
 * service publishes, and this process issues none.
 */
function tokenServices(config: Config, logger: Logger): { verify: TokenVerifier; tokens: TokenIssuer } {
  const jwt = { issuer: config.jwt.issuer, audience: config.jwt.audience };
  if (config.modules.includes(TOKEN_ISSUER)) {
    const keys = loadSigningKeys({ ...config.jwt, dataDir: config.dataDir });
    return {
      verify: createTokenVerifier({ publicKey: keys.publicKey, ...jwt }),
      tokens: createTokenIssuer({ keys, ...jwt, ttlSeconds: config.jwt.ttlSeconds }),
    };
  }
  const userUrl = config.serviceUrls.user;
  if (!userUrl) throw new Error('set USER_SERVICE_URL: tokens are verified with the public keys of the user service');
  return {
    verify: createRemoteVerifier({ jwksUrl: `${userUrl}/.well-known/jwks.json`, ...jwt, logger }),
    tokens: {
      issue: () => {
        throw new Error('only the user service issues tokens');
      },
      jwks: () => ({ keys: [] }),
    },
  };
}

/** The user module's remote port for account checks, or undefined (with a warning) when this process cannot call it. */
function accountPort<P>(make: () => P | undefined, logger: Logger): P | undefined {
  let port: P | undefined;
  let why = 'no user module here or at USER_SERVICE_URL';
  try {
    port = make();
  } catch (err) {
    why = err instanceof Error ? err.message : String(err);
  }
  if (!port)
    logger.warn({ why }, 'tokens are trusted until they expire: deactivations and role changes are not seen here');
  return port;
}

async function compose(config: Config, logger: Logger, closer: Closer, opts: StartOptions): Promise<RunningServer> {
  const hosted = config.modules;
  const { verify: verifySignature, tokens } = tokenServices(config, logger);
  const remotes = createRemotes(config, logger);

  // Made when a hosted module first asks for it (the user module does), and closed with the process.
  let passwords: PasswordPool | undefined;
  const passwordPool = () => {
    if (!passwords) {
      passwords = createPasswordPool(config.passwords);
      closer.add('password pool', () => passwords!.close());
    }
    return passwords;
  };

  const metrics = createMetrics({ service: serviceName(config) });
  const databases = await openDatabases(config, logger, closer, {
    migrate: config.migrateOnStart,
    embedded: opts.embedded,
  });
  // First in the registry, so a scrape reads the pools before any gauge that queries them (module gauges, the outbox backlog) takes a connection.
  registerPoolMetrics(metrics.registry, databases);
  const eventing = await createEventing(config, databases, logger);
  const ports: Ports = new Map();
  const modules = await buildModules({
    config,
    logger,
    databases,
    ports,
    tokens,
    passwords: passwordPool,
    recorder: eventing.recorder,
    remote: remotes.port,
    meter: (module) => registryMeter(metrics.registry, module),
    overrides: opts.overrides,
  });
  // Every token is also checked against its account (active? which role?), through the user module wherever it runs.
  const users = (ports.get('user') ?? accountPort(() => remotes.port('user'), logger)) as
    PortOf<typeof userContract> | undefined;
  const verify = users
    ? accountChecked(
        verifySignature,
        (id) =>
          users.getUser({ id }).then(
            (u) => ({ isActive: u.isActive, role: u.role }),
            (err: unknown) => (err instanceof UserNotFound ? undefined : Promise.reject(err)),
          ),
        config.accountCheckTtlMs,
      )
    : verifySignature;
  const problems = routingProblems(
    EVENT_ROUTES,
    EVENT_DEFINITIONS,
    new Map([...modules].map(([name, m]) => [name, m.handlers])),
  );
  if (problems.length) throw new Error(`event routing: ${problems.join('; ')}`);
  if (eventing.bus.kind === 'in-process') {
    for (const [type, consumers] of Object.entries(EVENT_ROUTES)) {
      const away = consumers.filter((c) => !modules.has(c as ModuleName));
      if (away.length && [...eventing.relays.keys()].some((p) => type in MODULE_DEFINITIONS[p].contract.events)) {
        logger.warn(
          { type, consumers: away },
          'events of this type are kept in the outbox and retried: their consumers are not hosted here and REDIS_URL is not set',
        );
      }
    }
  }
  for (const [name, instance] of modules) {
    await instance.start?.();
    if (instance.stop) closer.add(`${name} module`, () => instance.stop!());
    if (instance.handlers) eventing.bus.consume(name, instrumentHandlers(metrics.registry, name, instance.handlers));
  }
  await eventing.bus.start();
  closer.add('event bus', () => eventing.bus.close());
  for (const [name, relay] of eventing.relays) {
    relay.start();
    closer.add(`${name} outbox relay`, () => relay.stop());
  }

  const routes: BoundRoute[] = [];
  const checks: Record<string, HealthCheck> = {};
  for (const [name, instance] of modules) {
    for (const r of MODULE_DEFINITIONS[name].routes) routes.push({ def: r, runtime: instance.runtime });
    const db = databases.get(name)!;
    checks[`${name}.database`] =
      db.kind === 'sql'
        ? async () => void (await db.orm.em.getConnection().execute('select 1'))
        : async () => void (await db.orm.em.getConnection().getDb().command({ ping: 1 }));
  }
  for (const [name, relay] of eventing.relays)
    for (const r of adminEventRoutes(name)) routes.push({ def: r, runtime: { relay } });
  const internal = [];
  if (config.serviceKey) {
    for (const [name, instance] of modules)
      internal.push(
        serveContract(MODULE_DEFINITIONS[name].contract, instance.implementation, { serviceKey: config.serviceKey }),
      );
  }
  for (const [name, breaker] of remotes.breakers) {
    checks[`remote.${name}`] = async () => {
      if (breaker.opened) throw new Error('circuit open');
    };
  }
  const bullmq = eventing.bullmq;
  if (bullmq) checks['events.redis'] = () => bullmq.ping();

  // Pools first: collected in this order, the gauges read the pools before the outbox gauges' own queries take a connection.
  registerOutboxMetrics(metrics.registry, eventing.relays);
  registerBreakerMetrics(metrics.registry, remotes.breakers);
  registerQueueMetrics(metrics.registry, () => bullmq?.allQueues() ?? []);
  const info = {
    eventBus: eventing.bus.kind,
    queuesDashboard: bullmq
      ? `${QUEUES_PATH}: sign in with any admin account (HTTP basic) or an admin bearer token`
      : 'off: BullMQ is not in use (set REDIS_URL to use it)',
  };
  const peers = Object.fromEntries(
    Object.entries(config.serviceUrls).filter(
      (e): e is [string, string] => e[1] !== undefined && !hosted.includes(e[0] as ModuleName),
    ),
  );
  for (const r of healthRoutes)
    routes.push({ def: r, runtime: { modules: hosted, checks, info, timeoutMs: 2000, peers } });
  const { app, router } = createApp({
    logger,
    metrics,
    verify,
    routes,
    documentedRoutes: documentedRoutes(),
    corsOrigins: config.corsOrigins,
    bodyLimit: config.bodyLimit,
    trustProxy: config.trustProxy,
    trustedProxyHops: config.trustedProxyHops,
    metricsAccess: { onPublicPort: config.metrics.port === undefined, token: config.metrics.token },
    version: pkg.version,
    // Bull Board (and its UI's dependencies) is loaded only where BullMQ is in use.
    extraMiddleware: bullmq
      ? [
          (await import('./http/queues-board.ts')).queuesBoard({
            queues: bullmq.allQueues(),
            verify,
            signIn: users ? (email, password, client) => users.signIn({ email, password, client }) : undefined,
          }),
        ]
      : [],
    afterBodyMiddleware: internal,
  });

  // Slow clients (slow-loris) are cut off: headers and whole requests have deadlines, checked every second.
  const server = createServer(
    {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs),
    },
    app.callback(),
  );
  server.listen(config.port, config.host);
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const local = (host: string) => (host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host);
  const url = `http://${local(config.host)}:${port}`;
  let metricsUrl: string | undefined;
  if (config.metrics.port !== undefined) {
    const metricsServer = await serveMetrics(metrics, { port: config.metrics.port, host: config.metrics.host });
    closer.add('metrics listener', () => new Promise<void>((resolve) => metricsServer.close(() => resolve())));
    metricsUrl = `http://${local(config.metrics.host)}:${(metricsServer.address() as AddressInfo).port}/metrics`;
  }
  logger.info(
    {
      url,
      modules: hosted,
      startupMs: Math.round(process.uptime() * 1000),
      ...(bullmq ? { queues: info.queuesDashboard } : {}),
      ...(metricsUrl ? { metrics: metricsUrl } : {}),
    },
    'toko is listening',
  );

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      logger.info('shutting down');
      const drained = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
      });
      if ((await Promise.race([drained, timedOut])) === 'timeout') {
        logger.warn({ timeoutMs: config.shutdownTimeoutMs }, 'in-flight requests did not finish in time; closing them');
        server.closeAllConnections();
        await drained;
      }
      clearTimeout(timer);
      await closer.run();
      logger.info('stopped');
      logger.flush();
    })());

  return { url, port, metricsUrl, server, router, logger, databases, modules, eventing, ports, close };
}
