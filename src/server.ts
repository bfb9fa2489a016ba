import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Router } from './http/router.ts';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import pkg from '../package.json' with { type: 'json' };
import { createApp } from './app.ts';
import { generateSigningKeys, loadSigningKeys, signingKeysMissing } from './auth/keys.ts';
import { createPasswordPool, type PasswordPool } from './auth/passwords.ts';
import { createRemoteVerifier } from './auth/remote-jwks.ts';
import { accountChecked, createTokenVerifier, createTokenIssuer, type TokenVerifier } from './auth/tokens.ts';
import type { Identity, TokenIssuer } from '../kit/auth.ts';
import { createRemotes, registerBreakerMetrics, type Remotes } from './remotes.ts';
import { serveContract } from '../adapters/http/contract-server.ts';
import { serviceName, type Config, type ModuleName } from './config.ts';
import type { EmbeddedPostgres } from './db/embedded-postgres.ts';
import { Closer } from './closer.ts';
import { StartupClock } from './startup-clock.ts';
import { openDatabases } from './db/databases.ts';
import { healthRoutes, type HealthCheck } from './http/health.ts';
import { stopListening } from './http/stop-listening.ts';
import { createMetrics, serveMetrics, type Metrics } from './http/metrics.ts';
import type { BoundRoute } from './http/routes.ts';
import type { DemoData, ModuleDatabase } from '../kit/module.ts';
import { createLogger } from './logger.ts';
import { documentedRoutes } from './api-document.ts';
import { EVENT_DEFINITIONS, EVENT_ROUTES, MODULE_DEFINITIONS, TOKEN_ISSUER, identityOver } from './registry.ts';
import { routingProblems } from './events/routing.ts';
import { createEventing, type Eventing } from './events/eventing.ts';
import { createSharedState } from './shared-state.ts';
import type { SharedState } from '../kit/shared.ts';
import { registerOutboxMetrics } from './events/metrics.ts';
import { instrumentHandlers, registerPoolMetrics, registerQueueMetrics, registryMeter } from './telemetry/metrics.ts';
import { adminEventRoutes } from './http/admin-events.ts';
import { QUEUES_PATH } from './http/queues-route.ts';
import { buildModules, type AnyModuleInstance, type Ports } from './wiring.ts';
import type Koa from 'koa';

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
  /** The process entry's start-up clock (boot and load ended); the phases below end on it and the listening line carries them. */
  clock?: StartupClock;
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

type Databases = Map<ModuleName, ModuleDatabase>;
type Modules = Map<ModuleName, AnyModuleInstance>;

/** The composition root's steps, in order: each is named below. */
async function compose(config: Config, logger: Logger, closer: Closer, opts: StartOptions): Promise<RunningServer> {
  const clock = opts.clock ?? new StartupClock();
  const tokensReady = startTokenServices(config, logger, clock, closer);
  const remotes = await createRemotes(config, logger);
  const metrics = createMetrics({ service: serviceName(config) });
  const databases = await openDatabases(config, logger, closer, {
    migrate: config.migrateOnStart,
    embedded: opts.embedded,
    clock,
  });
  const tokens = await tokensReady();
  // First in the registry, so a scrape reads the pools before any gauge that queries them (module gauges, the outbox backlog) takes a connection.
  registerPoolMetrics(metrics.registry, databases);
  const eventing = await createEventing(config, databases, logger);
  const shared = await createSharedState(config, logger, closer);
  const ports: Ports = new Map();
  const passwords = passwordPool(config, closer);
  const modules = await buildModules({
    config,
    logger,
    databases,
    ports,
    tokens: tokens.issuer,
    passwords: passwords.get,
    recorder: eventing.recorder,
    remote: remotes.port,
    meter: (module) => registryMeter(metrics.registry, module),
    shared,
    overrides: opts.overrides,
  });
  const identity = identityFor(ports, remotes, logger);
  // Every token is also checked against its account (active? which role?), through the identity module wherever it runs.
  const verify = identity
    ? accountChecked(tokens.verify, (id) => identity.account(id), config.accountCheckTtlMs, shared.invalidations)
    : tokens.verify;
  checkEventRouting(modules, eventing, logger);
  clock.end('wire');
  await startModules(modules, eventing, metrics, closer);
  // The admin account's check is done: its bcrypt thread would otherwise idle on for 30 s.
  await passwords.release();
  clock.end('seed');
  await startEventing(eventing, closer);
  const routes = [...moduleRoutes(modules, eventing)];
  const checks = readinessChecks(databases, remotes, eventing);
  registerMetrics(metrics, eventing, remotes);
  const info = processInfo(eventing);
  const drain = { draining: false };
  routes.push(...healthRoutesOf(config, checks, info, () => drain.draining));
  const { app, router } = await httpApp(config, logger, metrics, {
    routes,
    verify,
    identity,
    modules,
    eventing,
    shared,
  });
  // Every cache is built by now: its drops' subscription is in place before the first request (bounded).
  await shared.ready(2000);
  const listening = await listen(config, app, metrics, closer);
  clock.end('listen');
  logListening(config, logger, listening, eventing, clock);
  const close = shutdown(listening.server, closer, config, logger, drain);
  return { ...listening, router, logger, databases, modules, eventing, ports, close };
}

/**
 * The line that says toko is up: where its API, docs, queues and metrics are,
 * how long it took since the process started, and where that time went.
 */
function logListening(
  config: Config,
  logger: Logger,
  listening: { url: string; metricsUrl?: string },
  eventing: { bullmq?: unknown },
  clock: StartupClock,
): void {
  logger.info(
    {
      url: listening.url,
      docs: `${listening.url}/docs`,
      redoc: `${listening.url}/redoc`,
      modules: config.modules,
      startupMs: Math.round(performance.now()),
      startupPhasesMs: clock.figures(),
      ...(eventing.bullmq
        ? {
            queues: `${listening.url}${QUEUES_PATH}`,
            queuesSignIn: QUEUES_SIGN_IN,
          }
        : {}),
      metrics: listening.metricsUrl ?? `${listening.url}/metrics`,
    },
    'toko is listening',
  );
}

/**
 * `tokenServices`, started. On a first start (no keys configured or kept) the key pair is generated on the
 * thread pool while the databases open, and the keys are read as soon as it is there: the `keys` phase is the
 * hand-over, then what was left to wait for. Otherwise they are read, or a configured pair checked, at once.
 * A start that fails meanwhile waits for the generation before it returns, so no key is written after it.
 */
function startTokenServices(
  config: Config,
  logger: Logger,
  clock: StartupClock,
  closer: Closer,
): () => Promise<TokenServices> {
  const keys = { ...config.jwt, dataDir: config.dataDir };
  if (!config.modules.includes(TOKEN_ISSUER) || !signingKeysMissing(keys)) {
    const tokens = tokenServices(config, logger);
    clock.end('keys');
    return async () => tokens;
  }
  const ready = generateSigningKeys(keys).then(() => tokenServices(config, logger));
  const failed = ready.then(
    () => undefined,
    (err: unknown) => err,
  );
  let reported = false;
  closer.add('key pair generation', async () => {
    const err = await failed;
    // A start that failed for another reason (its database) would otherwise hide this one until the next start.
    if (err && !reported) logger.error({ err }, 'generating the JWT key pair failed');
  });
  clock.end('keys');
  return async () => {
    reported = true;
    const tokens = await ready;
    clock.end('keys');
    return tokens;
  };
}

interface TokenServices {
  verify: TokenVerifier;
  issuer: TokenIssuer;
}

/**
 * Tokens: where the identity module lives here, they are signed and
 * verified with the local key pair; elsewhere they are verified with the
 * public keys its service publishes, and this process issues none.
 */
function tokenServices(config: Config, logger: Logger): TokenServices {
  const jwt = { issuer: config.jwt.issuer, audience: config.jwt.audience };
  if (config.modules.includes(TOKEN_ISSUER)) {
    const keys = loadSigningKeys({ ...config.jwt, dataDir: config.dataDir });
    return {
      verify: createTokenVerifier({ keys, ...jwt }),
      issuer: createTokenIssuer({ keys, ...jwt, ttlSeconds: config.jwt.ttlSeconds }),
    };
  }
  const url = config.serviceUrls[TOKEN_ISSUER];
  const variable = `${TOKEN_ISSUER.toUpperCase()}_SERVICE_URL`;
  if (!url) throw new Error(`set ${variable}: tokens are verified with the public keys of the ${TOKEN_ISSUER} service`);
  return {
    verify: createRemoteVerifier({ jwksUrl: `${url}/.well-known/jwks.json`, ...jwt, logger }),
    issuer: {
      issue: () => {
        throw new Error(`only the ${TOKEN_ISSUER} service issues tokens`);
      },
      jwks: () => ({ keys: [] }),
    },
  };
}

/**
 * The process's password-hashing pool: made when a hosted module first asks for it, and closed with the process;
 * `release` lets its threads go (nothing to do when no module asked for it).
 */
function passwordPool(config: Config, closer: Closer): { get: () => PasswordPool; release: () => Promise<void> } {
  let passwords: PasswordPool | undefined;
  const get = () => {
    if (!passwords) {
      const pool = createPasswordPool(config.passwords);
      closer.add('password pool', () => pool.close());
      passwords = pool;
    }
    return passwords;
  };
  return { get, release: async () => passwords?.release() };
}

/**
 * The identity capability over the identity module's port, hosted here or
 * remote; undefined (with a warning) when this process cannot call it.
 */
function identityFor(ports: Ports, remotes: Remotes, logger: Logger): Identity | undefined {
  let port = ports.get(TOKEN_ISSUER);
  let why = `no ${TOKEN_ISSUER} module here or at ${TOKEN_ISSUER.toUpperCase()}_SERVICE_URL`;
  if (!port) {
    try {
      port = remotes.port(TOKEN_ISSUER);
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    }
  }
  if (port) return identityOver(port);
  logger.warn({ why }, 'tokens are trusted until they expire: deactivations and role changes are not seen here');
  return undefined;
}

/** Refuses handlers that do not match the event routes; warns of events kept in the outbox for consumers not hosted here. */
function checkEventRouting(modules: Modules, eventing: Eventing, logger: Logger): void {
  const handlers = new Map([...modules].map(([name, m]) => [name, m.handlers]));
  const problems = routingProblems(EVENT_ROUTES, EVENT_DEFINITIONS, handlers);
  if (problems.length) throw new Error(`event routing: ${problems.join('; ')}`);
  if (eventing.bus.kind !== 'in-process') return;
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

/** Starts each hosted module in start order, loads its demo data when it asks to, and hands the bus its handlers. */
async function startModules(modules: Modules, eventing: Eventing, metrics: Metrics, closer: Closer): Promise<void> {
  for (const [name, instance] of modules) {
    await instance.start?.();
    if (instance.stop) closer.add(`${name} module`, () => instance.stop!());
    const demo = MODULE_DEFINITIONS[name].seed as DemoData<unknown> | undefined;
    if (demo && (await demo.atStart(instance.runtime))) await demo.load(instance.runtime);
    if (instance.handlers) eventing.bus.consume(name, instrumentHandlers(metrics.registry, name, instance.handlers));
  }
}

/** The bus, then each hosted producer's outbox relay. */
async function startEventing(eventing: Eventing, closer: Closer): Promise<void> {
  await eventing.bus.start();
  closer.add('event bus', () => eventing.bus.close());
  for (const [name, relay] of eventing.relays) {
    relay.start();
    closer.add(`${name} outbox relay`, () => relay.stop());
  }
}

/** Each hosted module's public routes, and each hosted producer's outbox admin routes. */
function* moduleRoutes(modules: Modules, eventing: Eventing): Generator<BoundRoute> {
  for (const [name, instance] of modules)
    for (const def of MODULE_DEFINITIONS[name].routes) yield { def, runtime: instance.runtime };
  for (const [name, relay] of eventing.relays)
    for (const def of adminEventRoutes(name)) yield { def, runtime: { relay } };
}

/** What /health/ready checks: each hosted module's database, each remote module's breaker, Redis when BullMQ is in use. */
function readinessChecks(databases: Databases, remotes: Remotes, eventing: Eventing): Record<string, HealthCheck> {
  const checks: Record<string, HealthCheck> = {};
  for (const [name, db] of databases) {
    checks[`${name}.database`] =
      db.kind === 'sql'
        ? async () => void (await db.orm.em.getConnection().execute('select 1'))
        : async () => void (await db.orm.em.getConnection().getDb().command({ ping: 1 }));
  }
  for (const [name, breaker] of remotes.breakers) {
    checks[`remote.${name}`] = async () => {
      if (breaker.opened) throw new Error('circuit open');
    };
  }
  const bullmq = eventing.bullmq;
  if (bullmq) checks['events.redis'] = () => bullmq.ping();
  return checks;
}

/** Outbox, breaker and queue gauges, after the pools' (collected in this order, the gauges read the pools before the outbox gauges' own queries take a connection). */
function registerMetrics(metrics: Metrics, eventing: Eventing, remotes: Remotes): void {
  registerOutboxMetrics(metrics.registry, eventing.relays);
  registerBreakerMetrics(metrics.registry, remotes.breakers);
  registerQueueMetrics(metrics.registry, () => eventing.bullmq?.allQueues() ?? []);
}

/** Who may open Bull Board, as readiness and the listening line say it. */
const QUEUES_SIGN_IN = 'any admin account (HTTP basic) or an admin bearer token';

/** Facts about this process that readiness shows. */
function processInfo(eventing: Eventing): Record<string, string> & { queuesDashboard: string } {
  return {
    eventBus: eventing.bus.kind,
    queuesDashboard: eventing.bullmq
      ? `${QUEUES_PATH}: sign in with ${QUEUES_SIGN_IN}`
      : 'off: BullMQ is not in use (set REDIS_URL to use it)',
  };
}

/** /health, /health/ready and /health/system, with the other services of a split deployment as peers. */
function healthRoutesOf(
  config: Config,
  checks: Record<string, HealthCheck>,
  info: Record<string, string>,
  draining: () => boolean,
): BoundRoute[] {
  const hosted = config.modules;
  const peers = Object.fromEntries(
    Object.entries(config.serviceUrls).filter(
      (e): e is [string, string] => e[1] !== undefined && !hosted.includes(e[0] as ModuleName),
    ),
  );
  return healthRoutes.map((def) => ({
    def,
    runtime: { modules: hosted, checks, info, timeoutMs: 2000, peers, draining },
  }));
}

/** The Koa app over this process's routes, with Bull Board where BullMQ is in use and the contracts it serves at /internal. */
async function httpApp(
  config: Config,
  logger: Logger,
  metrics: Metrics,
  parts: {
    routes: BoundRoute[];
    verify: TokenVerifier;
    identity?: Identity;
    modules: Modules;
    eventing: Eventing;
    shared: SharedState;
  },
) {
  return createApp({
    logger,
    metrics,
    verify: parts.verify,
    routes: parts.routes,
    documentedRoutes: documentedRoutes(),
    corsOrigins: config.corsOrigins,
    bodyLimit: config.bodyLimit,
    trustedProxies: config.trustedProxies,
    metricsAccess: { onPublicPort: config.metrics.port === undefined, token: config.metrics.token },
    version: pkg.version,
    extraMiddleware: await queuesBoardFor(config, parts),
    afterBodyMiddleware: internalRoutes(config, parts.modules),
  });
}

/** Bull Board where BullMQ is in use (it and its UI's dependencies are loaded only then); administrators sign in through the identity module. */
async function queuesBoardFor(
  config: Config,
  {
    eventing,
    verify,
    identity,
    shared,
  }: { eventing: Eventing; verify: TokenVerifier; identity?: Identity; shared: SharedState },
) {
  const bullmq = eventing.bullmq;
  if (!bullmq) return [];
  const { queuesBoard } = await import('./http/queues-board.ts');
  const signIn = identity
    ? (email: string, password: string, client: string) => identity.signIn({ email, password, client })
    : undefined;
  return [
    queuesBoard({
      queues: bullmq.allQueues(),
      verify,
      signIn,
      signInTtlMs: config.accountCheckTtlMs,
      invalidations: shared.invalidations,
    }),
  ];
}

/** The hosted modules' contracts, served to the other services at /internal (only with SERVICE_KEY). */
function internalRoutes(config: Config, modules: Modules) {
  const serviceKey = config.serviceKey;
  if (!serviceKey) return [];
  return [...modules].map(([name, instance]) =>
    serveContract(MODULE_DEFINITIONS[name].contract, instance.implementation, { serviceKey }),
  );
}

/** Listens (and serves /metrics on METRICS_PORT when set); slow clients (slow-loris) are cut off by header and request deadlines, checked every second. */
async function listen(config: Config, app: Koa, metrics: Metrics, closer: Closer) {
  const server = createServer(
    {
      headersTimeout: config.http.headersTimeoutMs,
      requestTimeout: config.http.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, config.http.headersTimeoutMs),
      // Longer than the gateway keeps an idle connection to us (4 s), so the gateway, not we, ends idle ones.
      keepAliveTimeout: 5000,
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
  return { server, port, url, metricsUrl };
}

/**
 * Drains, then closes: readiness answers 503 at once while requests are still
 * served for DRAIN_DELAY_MS (the gateway or load balancer stops sending new
 * ones), then the listener stops accepting, in-flight requests and kept-alive
 * connections end within SHUTDOWN_TIMEOUT_MS (then are cut), and the rest closes newest first
 * (outbox relays and event workers finish their jobs). Idempotent.
 */
function shutdown(
  server: Server,
  closer: Closer,
  config: Config,
  logger: Logger,
  drain: { draining: boolean },
): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () =>
    (closing ??= (async () => {
      drain.draining = true;
      // Connections stay kept alive while draining: answering `Connection: close` now would make the gateway
      // open a new connection for each request, and one it has opened that we have not yet accepted when the
      // listener closes is reset by the kernel after its request was sent (test/listener-close.test.ts).
      logger.info({ drainDelayMs: config.drainDelayMs }, 'shutting down');
      if (config.drainDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, config.drainDelayMs));
      const drained = stopListening(server);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), config.shutdownTimeoutMs);
      });
      if ((await Promise.race([drained, timedOut])) === 'timeout') {
        logger.warn(
          { timeoutMs: config.shutdownTimeoutMs },
          'in-flight requests or kept-alive connections did not end in time; closing them',
        );
        server.closeAllConnections();
        await drained;
      }
      clearTimeout(timer);
      await closer.run();
      logger.info('stopped');
      logger.flush();
    })());
}
