import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { blankIsUnset, bool, int, optionalString } from '../kit/env.ts';
import { MODULE_DEFINITIONS, MODULE_NAMES, type ModuleName } from './registry.ts';

export { MODULE_NAMES, type ModuleName };

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const postgresUrl = z.preprocess(
  blankIsUnset,
  z
    .string()
    .refine((v) => /^postgres(ql)?:\/\/.+/.test(v) && URL.canParse(v), 'expected a postgres:// connection URL')
    .optional(),
);

const mongoUrl = z.preprocess(
  blankIsUnset,
  z
    .string()
    .refine((v) => /^mongodb(\+srv)?:\/\/.+/.test(v) && URL.canParse(v), 'expected a mongodb:// connection URL')
    .optional(),
);

const httpUrl = z.preprocess(
  blankIsUnset,
  z
    .string()
    .refine((v) => /^https?:\/\/[^/]+/.test(v) && URL.canParse(v), 'expected an http(s):// base URL of a toko service')
    .transform((v) => v.replace(/\/+$/, ''))
    .optional(),
);

const currency = z.preprocess(
  blankIsUnset,
  z
    .string()
    .refine((v) => Intl.supportedValuesOf('currency').includes(v), 'expected an ISO 4217 currency code such as IDR')
    .default('IDR'),
);

const pem = (kind: 'PRIVATE' | 'PUBLIC') =>
  z.preprocess(
    blankIsUnset,
    z
      .string()
      // Environment files often carry PEMs on one line with literal \n.
      .transform((v) => v.replace(/\\n/g, '\n'))
      .refine(
        (v) =>
          v.includes(`-----BEGIN ${kind} KEY-----`) ||
          (kind === 'PRIVATE' && v.includes('-----BEGIN RSA PRIVATE KEY-----')),
        `expected a PEM ${kind.toLowerCase()} key`,
      )
      .optional(),
  );

const moduleList = z.preprocess(
  blankIsUnset,
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return [...MODULE_NAMES];
      const names = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const unknown = names.filter((n) => !(MODULE_NAMES as readonly string[]).includes(n));
      if (names.length === 0 || unknown.length > 0) {
        ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of ${MODULE_NAMES.join(', ')}` });
        return z.NEVER;
      }
      return MODULE_NAMES.filter((n) => names.includes(n));
    }),
);

const originList = z.preprocess(
  blankIsUnset,
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return [];
      const origins = v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      for (const o of origins) {
        if (o === '*' || !/^https?:\/\/[^/]+$/.test(o)) {
          ctx.addIssue({
            code: 'custom',
            message: 'expected a comma-separated list of origins like https://shop.example (no *, no path)',
          });
          return z.NEVER;
        }
      }
      return origins;
    }),
);

/** The variable of each module, named `<MODULE>_<suffix>`: `USER_DATABASE_URL`, ... */
export const moduleVariable = (module: ModuleName, suffix: string) => `${module.toUpperCase()}_${suffix}`;

function perModule<S extends z.ZodType>(
  suffix: string,
  schema: S,
  modules: readonly ModuleName[] = MODULE_NAMES,
): Record<string, S> {
  return Object.fromEntries(modules.map((m) => [moduleVariable(m, suffix), schema]));
}

/** Modules that can keep their data in MongoDB instead (they declare `mongoEntities`). */
const MONGO_CAPABLE = MODULE_NAMES.filter((m) => 'mongoEntities' in MODULE_DEFINITIONS[m]);

const envSchema = z
  .object({
    NODE_ENV: z.preprocess(
      blankIsUnset,
      z
        .enum(['development', 'production', 'test'], { message: 'expected development, production or test' })
        .default('development'),
    ),
    HOST: z.preprocess(blankIsUnset, z.string().default('0.0.0.0')),
    PORT: int(0, 65535, 3000),
    METRICS_PORT: z.preprocess(
      blankIsUnset,
      z.coerce
        .number({ message: 'expected a whole number from 0 to 65535' })
        .int('expected a whole number from 0 to 65535')
        .min(0, 'expected a whole number from 0 to 65535')
        .max(65535, 'expected a whole number from 0 to 65535')
        .optional(),
    ),
    METRICS_HOST: optionalString,
    METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'expected at least 16 characters').optional()),
    LOG_LEVEL: z.preprocess(
      blankIsUnset,
      z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
    ),
    LOG_PRETTY: bool(false),
    MODULES: moduleList,
    DATA_DIR: z.preprocess(blankIsUnset, z.string().default('./data')),
    XDG_CACHE_HOME: optionalString,
    EMBEDDED_TEMPLATE_DIR: optionalString,
    DATABASE_URL: postgresUrl,
    // Per module, named after it: where its data lives (`<M>_DATABASE_URL`) and, when another process hosts it, where that is (`<M>_SERVICE_URL`).
    ...perModule('DATABASE_URL', postgresUrl),
    ...perModule('SERVICE_URL', httpUrl),
    SERVICE_KEY: optionalString.pipe(z.string().min(16, 'expected at least 16 characters').optional()),
    HTTP_CLIENT_TIMEOUT_MS: int(1, 120_000, 2000),
    STORE_TIMEOUT_MS: int(100, 120_000, 2000),
    HTTP_CLIENT_RETRIES: int(0, 10, 2),
    BREAKER_ERROR_THRESHOLD_PERCENT: int(1, 100, 50),
    BREAKER_VOLUME_THRESHOLD: int(1, 10_000, 5),
    BREAKER_RESET_TIMEOUT_MS: int(100, 600_000, 10_000),
    REMOTE_OPTIONS: z.preprocess(
      blankIsUnset,
      z
        .string()
        .optional()
        .transform((v, ctx) => {
          const out: Partial<Record<ModuleName, Partial<RemoteTuning>>> = {};
          for (const part of (v ?? '')
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean)) {
            const m =
              /^([a-z]+)\.(timeoutMs|retries|errorThresholdPercentage|volumeThreshold|resetTimeoutMs)=(\d+)$/.exec(
                part,
              );
            if (!m || !(MODULE_NAMES as readonly string[]).includes(m[1]!)) {
              ctx.addIssue({
                code: 'custom',
                message: 'expected entries like product.timeoutMs=2000,product.retries=1 (module.setting=number)',
              });
              return z.NEVER;
            }
            (out[m[1] as ModuleName] ??= {})[m[2] as keyof RemoteTuning] = Number(m[3]);
          }
          return out;
        }),
    ),
    // `<M>_MONGODB_URL`, for a module that can live in MongoDB.
    ...perModule('MONGODB_URL', mongoUrl, MONGO_CAPABLE),
    REDIS_URL: z.preprocess(
      blankIsUnset,
      z
        .string()
        .refine((v) => /^rediss?:\/\/.+/.test(v) && URL.canParse(v), 'expected a redis:// connection URL')
        .optional(),
    ),
    QUEUE_PREFIX: z.preprocess(
      blankIsUnset,
      z
        .string()
        .regex(/^[a-z0-9_-]{1,40}$/i, 'expected 1-40 letters, digits, _ or -')
        .default('toko'),
    ),
    EVENT_MAX_ATTEMPTS: int(1, 100, 5),
    EVENT_BACKOFF_MS: int(0, 3_600_000, 1000),
    EVENT_CONCURRENCY: int(1, 100, 16),
    OUTBOX_POLL_MS: int(10, 600_000, 1000),
    OUTBOX_LEASE_SECONDS: int(1, 3600, 30),
    OUTBOX_RETENTION_HOURS: int(1, 24 * 365, 168),
    SHOP_CURRENCY: currency,
    ACCOUNT_CHECK_TTL_MS: int(0, 59_000, 30_000),
    DB_POOL_MAX: int(1, 100, 10),
    MIGRATE_ON_START: bool(true),
    CORS_ORIGINS: originList,
    BODY_LIMIT: z.preprocess(
      blankIsUnset,
      z
        .string()
        .regex(/^\d+(b|kb|mb)$/i, 'expected a size like 100kb or 1mb')
        .default('100kb'),
    ),
    TRUST_PROXY: bool(false),
    TRUSTED_PROXY_HOPS: int(1, 10, 1),
    SHUTDOWN_TIMEOUT_MS: int(0, 120_000, 10_000),
    HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000, 10_000),
    HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000, 30_000),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.preprocess(
      blankIsUnset,
      z
        .string()
        .refine(
          (v) => /^https?:\/\/[^/]+/.test(v) && URL.canParse(v),
          'expected the http(s):// base URL of an OTLP/HTTP collector, like http://localhost:4318',
        )
        .transform((v) => v.replace(/\/+$/, ''))
        .optional(),
    ),
    OTEL_SERVICE_NAME: z.preprocess(
      blankIsUnset,
      z
        .string()
        .regex(/^[A-Za-z0-9._-]{1,80}$/, 'expected 1-80 letters, digits, ., _ or -')
        .optional(),
    ),
    JWT_PRIVATE_KEY: pem('PRIVATE'),
    JWT_PUBLIC_KEY: pem('PUBLIC'),
    JWT_ISSUER: z.preprocess(blankIsUnset, z.string().default('toko')),
    JWT_AUDIENCE: z.preprocess(blankIsUnset, z.string().default('toko-api')),
    JWT_TTL_SECONDS: int(60, 7 * 24 * 3600, 3600),
    BCRYPT_COST: int(4, 15, 12),
    PASSWORD_WORKERS: int(1, 64, Math.max(1, availableParallelism())),
    PASSWORD_QUEUE_MAX: int(1, 100_000, 100),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.JWT_PRIVATE_KEY) !== Boolean(env.JWT_PUBLIC_KEY)) {
      const missing = env.JWT_PRIVATE_KEY ? 'JWT_PUBLIC_KEY' : 'JWT_PRIVATE_KEY';
      ctx.addIssue({ code: 'custom', path: [missing], message: 'expected to be set together with the other JWT key' });
    }
  });

export type Env = z.output<typeof envSchema>;

/** How calls to one remote module behave. */
export interface RemoteTuning {
  timeoutMs: number;
  retries: number;
  errorThresholdPercentage: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
}

/** Every variable the configuration reads (the README documents each). */
export const ENV_VARIABLES = [...Object.keys(envSchema.shape), ...MODULE_NAMES.flatMap((m) => settingsVariables(m))];

/** The variables a module's settings read (its schema's keys). */
function settingsVariables(m: ModuleName): string[] {
  const schema = MODULE_DEFINITIONS[m].settings as { shape?: Record<string, unknown> } | undefined;
  return Object.keys(schema?.shape ?? {});
}

// A variable means one thing: a module may not declare one the kernel or another module reads.
for (const [name, count] of Object.entries(
  ENV_VARIABLES.reduce<Record<string, number>>((n, v) => ((n[v] = (n[v] ?? 0) + 1), n), {}),
)) {
  if (count > 1) throw new Error(`${name} is declared by more than one module (or by a module and the kernel)`);
}

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  /**
   * Who may read /metrics: on its own listener (`port`, on `host`) and not on
   * the public port; else on the public port for loopback peers, and for
   * anyone with the bearer `token`.
   */
  metrics: { port?: number; host: string; token?: string };
  logLevel: Env['LOG_LEVEL'];
  /** Human-readable log lines, honoured only when stdout is a terminal. */
  logPretty: boolean;
  modules: ModuleName[];
  dataDir: string;
  /** Where initialised embedded data directories are kept for copying (per machine); undefined: initialise each one. */
  embeddedTemplateDir?: string;
  /** Per hosted module: a server URL, or undefined for the embedded database. */
  databaseUrls: Record<ModuleName, string | undefined>;
  dbPoolMax: number;
  /** The longest a request waits to reach a database (connect, a free pooled connection, MongoDB's server selection). */
  storeTimeoutMs: number;
  /** Modules whose data lives in MongoDB instead of SQL (`<M>_MONGODB_URL`). */
  mongoUrls: Partial<Record<ModuleName, string>>;
  currency: string;
  /** How long a process trusts what it learnt of an account (active? which role?) before asking again: the most a deactivation or role change takes to reach every service. */
  accountCheckTtlMs: number;
  /** Base URLs of modules served by other processes. */
  serviceUrls: Partial<Record<ModuleName, string>>;
  /** Shared key that internal (service-to-service) calls carry; required to serve or call them. */
  serviceKey?: string;
  /** Defaults for every remote module, and each module's own values from REMOTE_OPTIONS. */
  remoteTuning: Record<ModuleName, RemoteTuning>;
  /** Set: events travel over BullMQ on this Redis; unset: in process. */
  redisUrl?: string;
  events: {
    queuePrefix: string;
    maxAttempts: number;
    backoffMs: number;
    concurrency: number;
    pollMs: number;
    leaseSeconds: number;
    retentionHours: number;
  };
  /** Slow clients: all headers within headersTimeoutMs, the whole request within requestTimeoutMs, or 408 and the socket is closed. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number };
  migrateOnStart: boolean;
  corsOrigins: string[];
  bodyLimit: string;
  trustProxy: boolean;
  /** With trustProxy: how many proxies stand in front; the client address is the one the outermost of them saw (counted from the right of X-Forwarded-For). */
  trustedProxyHops: number;
  shutdownTimeoutMs: number;
  /** Set: traces are exported over OTLP/HTTP to this collector; unset: tracing is off. */
  tracing?: { endpoint: string; serviceName?: string };
  jwt: { privateKey?: string; publicKey?: string; issuer: string; audience: string; ttlSeconds: number };
  passwords: { cost: number; workers: number; queueMax: number };
  /** Each module's own variables, as its `settings` schema read them. */
  settings: ModuleSettingsOf;
}

/** What each module's settings schema reads. */
export type ModuleSettingsOf = {
  [K in ModuleName]: (typeof MODULE_DEFINITIONS)[K] extends { settings?: infer S }
    ? S extends z.ZodType
      ? z.output<S>
      : Record<string, never>
    : Record<string, never>;
};

/** `toko` for the whole monolith, `toko-<modules>` for a process hosting some of them: the `service` label and log field. */
export function serviceName(config: Pick<Config, 'modules'>): string {
  return config.modules.length === MODULE_NAMES.length ? 'toko' : `toko-${config.modules.join('-')}`;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Reads and validates the environment once. Throws `ConfigError` whose
 * message is one line naming each bad variable and what it expects.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  const modules = MODULE_NAMES.map((m) => [m, MODULE_DEFINITIONS[m].settings?.safeParse(source)] as const);
  const issues = [...(parsed.error?.issues ?? []), ...modules.flatMap(([, r]) => r?.error?.issues ?? [])];
  if (!parsed.success || issues.length > 0) {
    const problems = issues.map((i) => `${String(i.path[0] ?? 'environment')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
  }
  const e = parsed.data;
  const settings = Object.fromEntries(modules.map(([m, r]) => [m, r?.data ?? {}])) as ModuleSettingsOf;
  const own = (m: ModuleName, suffix: string) =>
    (e as Record<string, unknown>)[moduleVariable(m, suffix)] as string | undefined;
  const databaseUrls = Object.fromEntries(
    MODULE_NAMES.map((m) => [m, own(m, 'DATABASE_URL') ?? e.DATABASE_URL]),
  ) as Record<ModuleName, string | undefined>;
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST ?? e.HOST, token: e.METRICS_TOKEN },
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY,
    tracing: e.OTEL_EXPORTER_OTLP_ENDPOINT
      ? { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME }
      : undefined,
    modules: e.MODULES,
    dataDir: path.resolve(e.DATA_DIR),
    embeddedTemplateDir:
      e.EMBEDDED_TEMPLATE_DIR === 'off'
        ? undefined
        : path.resolve(
            e.EMBEDDED_TEMPLATE_DIR ?? path.join(e.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'toko'),
          ),
    databaseUrls,
    dbPoolMax: e.DB_POOL_MAX,
    storeTimeoutMs: e.STORE_TIMEOUT_MS,
    mongoUrls: Object.fromEntries(
      MONGO_CAPABLE.filter((m) => own(m, 'MONGODB_URL')).map((m) => [m, own(m, 'MONGODB_URL')!]),
    ),
    serviceUrls: Object.fromEntries(
      MODULE_NAMES.filter((m) => own(m, 'SERVICE_URL') && !e.MODULES.includes(m)).map((m) => [
        m,
        own(m, 'SERVICE_URL')!,
      ]),
    ),
    serviceKey: e.SERVICE_KEY,
    remoteTuning: Object.fromEntries(
      MODULE_NAMES.map((m) => [
        m,
        {
          timeoutMs: e.HTTP_CLIENT_TIMEOUT_MS,
          retries: e.HTTP_CLIENT_RETRIES,
          errorThresholdPercentage: e.BREAKER_ERROR_THRESHOLD_PERCENT,
          volumeThreshold: e.BREAKER_VOLUME_THRESHOLD,
          resetTimeoutMs: e.BREAKER_RESET_TIMEOUT_MS,
          ...e.REMOTE_OPTIONS[m],
        },
      ]),
    ) as Record<ModuleName, RemoteTuning>,
    redisUrl: e.REDIS_URL,
    events: {
      queuePrefix: e.QUEUE_PREFIX,
      maxAttempts: e.EVENT_MAX_ATTEMPTS,
      backoffMs: e.EVENT_BACKOFF_MS,
      concurrency: e.EVENT_CONCURRENCY,
      pollMs: e.OUTBOX_POLL_MS,
      leaseSeconds: e.OUTBOX_LEASE_SECONDS,
      retentionHours: e.OUTBOX_RETENTION_HOURS,
    },
    currency: e.SHOP_CURRENCY,
    accountCheckTtlMs: e.ACCOUNT_CHECK_TTL_MS,
    migrateOnStart: e.MIGRATE_ON_START,
    corsOrigins: e.CORS_ORIGINS,
    bodyLimit: e.BODY_LIMIT.toLowerCase(),
    trustProxy: e.TRUST_PROXY,
    trustedProxyHops: e.TRUSTED_PROXY_HOPS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: Math.max(e.HTTP_REQUEST_TIMEOUT_MS, e.HTTP_HEADERS_TIMEOUT_MS),
    },
    jwt: {
      privateKey: e.JWT_PRIVATE_KEY,
      publicKey: e.JWT_PUBLIC_KEY,
      issuer: e.JWT_ISSUER,
      audience: e.JWT_AUDIENCE,
      ttlSeconds: e.JWT_TTL_SECONDS,
    },
    passwords: { cost: e.BCRYPT_COST, workers: e.PASSWORD_WORKERS, queueMax: e.PASSWORD_QUEUE_MAX },
    settings,
  };
}

/** For the command-line entry points: the configuration, or one line on stderr and exit code 1. */
export function loadConfigOrExit(source: NodeJS.ProcessEnv = process.env): Config {
  try {
    return loadConfig(source);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`toko: ${err.message}\n`);
    process.exit(1);
  }
}
