import { availableParallelism, homedir } from 'node:os';
import path from 'node:path';
import { z, type GlobalMeta } from 'zod';
import { blankIsUnset, bool, int, optionalBool, optionalString } from '../kit/env.ts';
import { isAddressOrRange } from './http/client-address.ts';
import { MODULE_DEFINITIONS, MODULE_NAMES, TOKEN_ISSUER, type ModuleName } from './registry.ts';

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

/** PEM public keys, one after another (literal \n allowed, as in an environment file). */
const pemList = z.preprocess(
  blankIsUnset,
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined) return [];
      const text = v.replace(/\\n/g, '\n');
      const block = /-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g;
      const keys = [...text.matchAll(block)].map((m) => `${m[0]}\n`);
      const rest = text.replace(block, '');
      if (keys.length === 0 || !/^[\s,]*$/.test(rest)) {
        ctx.addIssue({ code: 'custom', message: 'expected one or more PEM public keys, one after another' });
        return z.NEVER;
      }
      return keys;
    }),
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

const proxyList = z.preprocess(
  blankIsUnset,
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      const entries = (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      if (entries.every(isAddressOrRange)) return entries;
      ctx.addIssue({
        code: 'custom',
        message: 'expected a comma-separated list of IP addresses or CIDR ranges, like 10.0.0.5,10.0.0.0/8,fd00::/8',
      });
      return z.NEVER;
    }),
);

/** Settings before TRUSTED_PROXIES: read by nothing, and refused alone (superRefine below). */
const deprecatedBool = z.preprocess(
  blankIsUnset,
  z
    .enum(['true', 'false', '1', '0'], { message: 'expected true or false' })
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1')),
);
const deprecatedHops = z.preprocess(
  blankIsUnset,
  z
    .string()
    .regex(/^([1-9]|10)$/, 'expected a whole number from 1 to 10')
    .transform(Number)
    .optional(),
);

/** The variable of each module, named `<MODULE>_<suffix>`: `USER_DATABASE_URL`, ... */
export const moduleVariable = (module: ModuleName, suffix: string) => `${module.toUpperCase()}_${suffix}`;

/** One variable per module (`<MODULE>_<suffix>`), each read by `schema` and documented by `meta` of its module. */
function perModule<S extends z.ZodType>(
  suffix: string,
  schema: S,
  meta: (m: ModuleName) => GlobalMeta,
  modules: readonly ModuleName[] = MODULE_NAMES,
): Record<string, S> {
  return Object.fromEntries(modules.map((m) => [moduleVariable(m, suffix), schema.meta(meta(m))]));
}

/** Modules that can keep their data in MongoDB instead (they declare `mongoEntities`). */
const MONGO_CAPABLE = MODULE_NAMES.filter((m) => 'mongoEntities' in MODULE_DEFINITIONS[m]);

/**
 * The kernel's variables. Each says what it means in `.meta({ description })`
 * and, where its default is not a plain value of the schema's own, says that
 * in `.meta({ default })`: `npm run generate` writes docs/configuration.md
 * from these and from every module's `settings`, declared the same way.
 */
const envSchema = z
  .object({
    NODE_ENV: z
      .preprocess(
        blankIsUnset,
        z
          .enum(['development', 'production', 'test'], { message: 'expected development, production or test' })
          .default('development'),
      )
      .meta({ description: '`development`, `production` or `test`' }),
    HOST: z.preprocess(blankIsUnset, z.string().default('0.0.0.0')).meta({ description: 'address to listen on' }),
    PORT: int(0, 65535, 3000).meta({ description: 'port to listen on (`0` picks a free one)' }),
    METRICS_PORT: z
      .preprocess(
        blankIsUnset,
        z.coerce
          .number({ message: 'expected a whole number from 0 to 65535' })
          .int('expected a whole number from 0 to 65535')
          .min(0, 'expected a whole number from 0 to 65535')
          .max(65535, 'expected a whole number from 0 to 65535')
          .optional(),
      )
      .meta({
        description:
          'serve `/metrics` on a listener of its own (on `METRICS_HOST`) and not on the public port at all: for a network only Prometheus reaches (the compose files use `9464`, unpublished)',
      }),
    METRICS_HOST: optionalString.meta({ description: 'the address that listener binds', default: '`HOST`' }),
    METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'expected at least 16 characters').optional()).meta({
      description:
        "without `METRICS_PORT`, `/metrics` on the public port answers only peers on this machine (the socket's address; `X-Forwarded-For` never counts); with this secret (16+ characters) as a bearer token, any Prometheus may read it",
    }),
    LOG_LEVEL: z
      .preprocess(
        blankIsUnset,
        z.enum(LOG_LEVELS, { message: `expected one of ${LOG_LEVELS.join(', ')}` }).default('info'),
      )
      .meta({ description: '`fatal` `error` `warn` `info` `debug` `trace` `silent`; logs are JSON lines on stdout' }),
    LOG_PRETTY: optionalBool.meta({
      description:
        '`true`: coloured, human-readable lines (pino-pretty), only when stdout is a terminal; JSON otherwise. Unset: on in `development`',
    }),
    MODULES: moduleList.meta({
      description: `comma-separated modules this process hosts: ${MODULE_NAMES.map((m) => `\`${m}\``).join(', ')}`,
      default: 'all',
    }),
    DATA_DIR: z
      .preprocess(blankIsUnset, z.string().default('./data'))
      .meta({ description: 'embedded database (`pg/`) and generated signing keys (`keys/`)' }),
    XDG_CACHE_HOME: optionalString.meta({
      description: "the user's cache directory (the XDG convention), the default parent of `EMBEDDED_TEMPLATE_DIR`",
      default: '`~/.cache`',
    }),
    EMBEDDED_TEMPLATE_DIR: optionalString.meta({
      description:
        'where an initialised embedded data directory is kept, once per machine and PGlite version: a new `DATA_DIR` starts as a copy of it (a tenth of a second) instead of running initdb (seconds). `off`: initialise every new data directory',
      default: '`$XDG_CACHE_HOME/toko` (`~/.cache/toko`)',
    }),
    DATABASE_URL: postgresUrl.meta({
      description: '`postgres://` URL of a PostgreSQL server for every module; unset = embedded PGlite',
    }),
    // Per module, named after it: where its data lives (`<M>_DATABASE_URL`) and, when another process hosts it, where that is (`<M>_SERVICE_URL`).
    ...perModule('DATABASE_URL', postgresUrl, (m) => ({
      description: `a separate server or database for the ${m} module`,
      default: '`DATABASE_URL`',
    })),
    ...perModule('SERVICE_URL', httpUrl, (m) => ({
      description: `base URL of the ${m} service, for a process that needs the ${m} module but does not host it${m === TOKEN_ISSUER ? ' (its contract, and the JWKS that verifies tokens)' : ''}`,
    })),
    SERVICE_KEY: optionalString.pipe(z.string().min(16, 'expected at least 16 characters').optional()).meta({
      description:
        'shared secret (16+ characters) that internal calls carry in `x-toko-service-key`; without it `/internal/...` is not served and remote modules cannot be called',
    }),
    HTTP_CLIENT_TIMEOUT_MS: int(1, 120_000, 2000).meta({ description: 'timeout of each internal call attempt' }),
    STORE_TIMEOUT_MS: int(100, 120_000, 2000).meta({
      description:
        "the longest a request waits on a database: a new connection, a free one from the pool, MongoDB's server selection, and on a PostgreSQL server each statement's answer (after migrations); past it the request is answered 503 with `Retry-After`",
    }),
    MOVED_DATA_POLL_MS: int(0, 60_000, 250).meta({
      description:
        'on a PostgreSQL server, how often each replica looks for the marker `npm run move-data` leaves when it moves a module to another database, and follows it without a restart; 0: never looks (a moved module then needs a restart with its new URL)',
    }),
    HTTP_CLIENT_RETRIES: int(0, 10, 2).meta({
      description: 'extra attempts for contract methods marked idempotent, with exponential backoff and jitter',
    }),
    BREAKER_ERROR_THRESHOLD_PERCENT: int(1, 100, 50).meta({
      description: 'failure rate that opens the circuit breaker of a remote module',
    }),
    BREAKER_VOLUME_THRESHOLD: int(1, 10_000, 5).meta({
      description: 'calls in the window before the breaker may open',
    }),
    BREAKER_RESET_TIMEOUT_MS: int(100, 600_000, 10_000).meta({
      description: 'how long an open breaker waits before letting one call through',
    }),
    REMOTE_OPTIONS: z
      .preprocess(
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
      )
      .meta({
        description:
          'per remote module, over the five defaults above (`HTTP_CLIENT_TIMEOUT_MS`, `HTTP_CLIENT_RETRIES`, `BREAKER_*`): `product.timeoutMs=2000,product.retries=1,user.resetTimeoutMs=5000` (settings: `timeoutMs`, `retries`, `errorThresholdPercentage`, `volumeThreshold`, `resetTimeoutMs`)',
      }),
    // `<M>_MONGODB_URL`, for a module that can live in MongoDB.
    ...perModule(
      'MONGODB_URL',
      mongoUrl,
      (m) => ({
        description: `\`mongodb://\` URL: the ${m} module keeps its data in MongoDB instead of SQL (database from the URL path, default \`toko\`)`,
      }),
      MONGO_CAPABLE,
    ),
    REDIS_URL: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .refine((v) => /^rediss?:\/\/.+/.test(v) && URL.canParse(v), 'expected a redis:// connection URL')
          .optional(),
      )
      .meta({
        description:
          '`redis://` URL: events travel as BullMQ jobs and Bull Board is served at `/admin/queues`; unset = events are delivered in process',
      }),
    REPLICAS: int(1, 1000, 1).meta({
      description:
        'how many replicas of this service run (`npm run split -- --replicas` sets it); more than 1 needs `REDIS_URL`. With it every throttle is counted in Redis across them; while Redis does not answer, each replica keeps its own count of limit / REPLICAS, so together they allow no more than the limit',
    }),
    QUEUE_PREFIX: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .regex(/^[a-z0-9_-]{1,40}$/i, 'expected 1-40 letters, digits, _ or -')
          .default('toko'),
      )
      .meta({ description: 'queue names are `<prefix>-<consuming module>` (several deployments can share one Redis)' }),
    EVENT_MAX_ATTEMPTS: int(1, 100, 5).meta({
      description: 'delivery attempts per event (outbox relay) and per job (BullMQ) before it is dead / failed',
    }),
    EVENT_BACKOFF_MS: int(0, 3_600_000, 1000).meta({
      description: 'delay before the second attempt; doubles after each failure',
    }),
    EVENT_CONCURRENCY: int(1, 100, 16).meta({
      description:
        'events handled at once: jobs per BullMQ worker, and deliveries per outbox relay (events about one order or one user always go out in order)',
    }),
    EVENT_PARTITIONS: int(1, 256, 1).meta({
      description:
        "with BullMQ: queues per consuming module. 1: one queue `<prefix>-<module>`, EVENT_CONCURRENCY jobs at once per replica, per-subject order only at EVENT_CONCURRENCY=1 and one consumer replica. More: queues `<prefix>-<module>-p<i>` chosen by a hash of the event's subject, each handling one job at a time across all replicas, so events about one subject are handled in order with any number of replicas (up to this many jobs at once per module)",
    }),
    OUTBOX_POLL_MS: int(10, 600_000, 1000).meta({
      description: 'how often each outbox is read even when nobody woke the relay (rows left by a crash)',
    }),
    OUTBOX_LEASE_SECONDS: int(1, 3600, 30).meta({
      description:
        "how long a relay's claim on an event lasts; after a crash mid-delivery the event is taken again once it runs out. Keep it above the slowest delivery",
    }),
    OUTBOX_RETENTION_HOURS: int(1, 24 * 365, 168).meta({
      description: 'delivered outbox rows are deleted after this long',
    }),
    SHOP_CURRENCY: currency.meta({
      description: "ISO 4217 code of the shop's single currency; prices are integer minor units of it",
    }),
    ACCOUNT_CHECK_TTL_MS: int(0, 59_000, 30_000).meta({
      description:
        'how long a process trusts what it learnt of an account behind a token (active? which role?) before asking the user module again. A deactivation or role change is dropped at once in the process that made it and, with `REDIS_URL`, in every other process within milliseconds; this TTL is the backstop for a drop that did not arrive (at most 59000; `0` asks on every request)',
    }),
    DB_POOL_MAX: int(1, 100, 10).meta({ description: 'connections per module pool on a PostgreSQL server' }),
    MIGRATE_ON_START: bool(true).meta({
      description: 'apply pending migrations at start-up (`npm run migrate` does it on demand)',
    }),
    CORS_ORIGINS: originList.meta({
      description:
        'comma-separated allowed origins, e.g. `https://shop.example`; `*` is refused because credentials are allowed',
      default: 'none',
    }),
    BODY_LIMIT: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .regex(/^\d+(b|kb|mb)$/i, 'expected a size like 100kb or 1mb')
          .default('100kb'),
      )
      .meta({ description: 'largest JSON body accepted (413 past it)' }),
    TRUSTED_PROXIES: proxyList.meta({
      description:
        "comma-separated addresses and CIDR ranges of your proxies (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`): `X-Forwarded-For` is read only when the socket's peer is one of them, from the right, past every address in the list; the first one that is not is the client. Unset = the socket's address, the header is never read",
      default: 'none',
    }),
    TRUST_PROXY: deprecatedBool.meta({
      description:
        'deprecated, read by nothing: `TRUSTED_PROXIES` decides. `true` without `TRUSTED_PROXIES` stops start-up, naming it',
      default: '—',
    }),
    TRUSTED_PROXY_HOPS: deprecatedHops.meta({
      description:
        'deprecated, read by nothing: every proxy of a chain is listed in `TRUSTED_PROXIES`. Set without `TRUSTED_PROXIES`, it stops start-up, naming it',
      default: '—',
    }),
    DRAIN_DELAY_MS: int(0, 60_000, 0).meta({
      description:
        'after SIGTERM, how long `/health/ready` answers 503 while requests are still served, so the gateway or load balancer stops sending new ones before the listener closes',
    }),
    SHUTDOWN_TIMEOUT_MS: int(0, 120_000, 10_000).meta({
      description: 'how long in-flight requests may take to finish after SIGTERM',
    }),
    HTTP_HEADERS_TIMEOUT_MS: int(100, 600_000, 10_000).meta({
      description: 'a client must send all request headers within this, or gets 408 and is disconnected (slow-loris)',
    }),
    HTTP_REQUEST_TIMEOUT_MS: int(100, 3_600_000, 30_000).meta({
      description: '… and the whole request, body included, within this (never less than `HTTP_HEADERS_TIMEOUT_MS`)',
    }),
    OTEL_EXPORTER_OTLP_ENDPOINT: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .refine(
            (v) => /^https?:\/\/[^/]+/.test(v) && URL.canParse(v),
            'expected the http(s):// base URL of an OTLP/HTTP collector, like http://localhost:4318',
          )
          .transform((v) => v.replace(/\/+$/, ''))
          .optional(),
      )
      .meta({
        description:
          'base URL of an OTLP/HTTP collector (`http://localhost:4318`); set = traces are exported to `<url>/v1/traces`; unset = tracing off',
      }),
    OTEL_SERVICE_NAME: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .regex(/^[A-Za-z0-9._-]{1,80}$/, 'expected 1-80 letters, digits, ., _ or -')
          .optional(),
      )
      .meta({ description: "the `service.name` of this process's spans", default: '`toko` / `toko-<modules>`' }),
    JWT_PRIVATE_KEY: pem('PRIVATE').meta({
      description:
        'PEM RSA private key signing access tokens; set with `JWT_PUBLIC_KEY` or neither (then a pair is generated once under `DATA_DIR/keys`). May be given on one line with literal `\\n`',
      default: 'generated',
    }),
    JWT_PUBLIC_KEY: pem('PUBLIC').meta({
      description: 'PEM public key matching `JWT_PRIVATE_KEY` (on one line with literal `\\n` too)',
      default: 'generated',
    }),
    JWT_EXTRA_PUBLIC_KEYS: pemList.meta({
      description:
        'PEM public keys, one after another, published in the JWKS and accepted besides `JWT_PUBLIC_KEY`: during a key rotation, the next key before it signs, then the previous one until its tokens expire (docs/kubernetes.md)',
    }),
    JWT_ISSUER: z
      .preprocess(blankIsUnset, z.string().default('toko'))
      .meta({ description: '`iss` of issued tokens, checked on every request' }),
    JWT_AUDIENCE: z
      .preprocess(blankIsUnset, z.string().default('toko-api'))
      .meta({ description: '`aud` of issued tokens, checked on every request' }),
    JWT_TTL_SECONDS: int(60, 7 * 24 * 3600, 3600).meta({ description: 'access token lifetime' }),
    BCRYPT_COST: int(4, 15, 12).meta({ description: 'bcrypt cost factor (4–15)' }),
    PASSWORD_WORKERS: int(1, 64, Math.max(1, availableParallelism())).meta({
      description: 'threads hashing and checking passwords',
      default: 'cores',
    }),
    PASSWORD_QUEUE_MAX: int(1, 100_000, 100).meta({
      description:
        'password checks and new hashes that may wait for a bcrypt worker; past it 503 with `Retry-After`. New hashes (sign-ups) never hold every worker, so a login waits for one hash at most during a sign-up burst',
    }),
  })
  .superRefine((env, ctx) => {
    // They trusted X-Forwarded-For from any peer. Alone, ignoring them would quietly make every client behind
    // the proxy one address to the throttles; refusing says what replaced them.
    for (const old of ['TRUST_PROXY', 'TRUSTED_PROXY_HOPS'] as const) {
      const meant = old === 'TRUST_PROXY' ? env.TRUST_PROXY === true : env.TRUSTED_PROXY_HOPS !== undefined;
      if (meant && env.TRUSTED_PROXIES.length === 0)
        ctx.addIssue({
          code: 'custom',
          path: [old],
          message:
            'replaced by TRUSTED_PROXIES, the addresses or CIDR ranges of your proxies: X-Forwarded-For is believed from them only (docs/security.md, the client address)',
        });
    }
    // Without Redis each replica would count its own throttles and keep its own caches: N replicas, N times the tries.
    if (env.REPLICAS > 1 && !env.REDIS_URL)
      ctx.addIssue({
        code: 'custom',
        path: ['REPLICAS'],
        message:
          'more than one replica needs REDIS_URL: without it throttles and cache drops are not shared between the replicas',
      });
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

/** A variable the configuration reads: who declares it, and the schema that reads and documents it. */
export interface Setting {
  name: string;
  owner: 'kernel' | ModuleName;
  schema: z.ZodType;
}

/** Every variable the configuration reads, the kernel's then each module's in start order (docs/configuration.md lists each). */
export const SETTINGS: Setting[] = [
  ...Object.entries(envSchema.shape).map(([name, schema]): Setting => ({ name, owner: 'kernel', schema })),
  ...MODULE_NAMES.flatMap((m) =>
    Object.entries(settingsShape(m)).map(([name, schema]): Setting => ({ name, owner: m, schema })),
  ),
];

/** Every variable the configuration reads, by name. */
export const ENV_VARIABLES = SETTINGS.map((s) => s.name);

/** The variables a module's settings read (its schema's shape). */
function settingsShape(m: ModuleName): Record<string, z.ZodType> {
  const schema = MODULE_DEFINITIONS[m].settings as { shape?: Record<string, z.ZodType> } | undefined;
  return schema?.shape ?? {};
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
  /** How often a module on a PostgreSQL server looks for a moved-data marker; 0 never. */
  movedDataPollMs: number;
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
  /** How many replicas of this service run: each keeps limit / replicas of every throttle while Redis is away. */
  replicas: number;
  events: {
    queuePrefix: string;
    maxAttempts: number;
    backoffMs: number;
    concurrency: number;
    /** BullMQ queues per consuming module, by a hash of the subject; see EVENT_PARTITIONS. */
    partitions: number;
    pollMs: number;
    leaseSeconds: number;
    retentionHours: number;
  };
  /** Slow clients: all headers within headersTimeoutMs, the whole request within requestTimeoutMs, or 408 and the socket is closed. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number };
  migrateOnStart: boolean;
  corsOrigins: string[];
  bodyLimit: string;
  /** Addresses and CIDR ranges of the proxies whose X-Forwarded-For is believed; empty: none is. */
  trustedProxies: string[];
  drainDelayMs: number;
  shutdownTimeoutMs: number;
  /** Set: traces are exported over OTLP/HTTP to this collector; unset: tracing is off. */
  tracing?: { endpoint: string; serviceName?: string };
  jwt: {
    privateKey?: string;
    publicKey?: string;
    /** Published in the JWKS and accepted besides the signing key: during a key rotation, the next key before it signs and the previous one until its tokens expire. */
    extraPublicKeys: string[];
    issuer: string;
    audience: string;
    ttlSeconds: number;
  };
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

/** The kernel's variables and each module's settings, or `ConfigError` naming every bad variable. */
function parseEnvironment(source: NodeJS.ProcessEnv): { e: Env; settings: ModuleSettingsOf } {
  const parsed = envSchema.safeParse(source);
  const modules = MODULE_NAMES.map((m) => [m, MODULE_DEFINITIONS[m].settings?.safeParse(source)] as const);
  const issues = [...(parsed.error?.issues ?? []), ...modules.flatMap(([, r]) => r?.error?.issues ?? [])];
  if (!parsed.success || issues.length > 0) {
    const problems = issues.map((i) => `${String(i.path[0] ?? 'environment')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${[...new Set(problems)].join('; ')}`);
  }
  const settings = Object.fromEntries(modules.map(([m, r]) => [m, r?.data ?? {}])) as ModuleSettingsOf;
  return { e: parsed.data, settings };
}

/** A module's own variable (`<MODULE>_<suffix>`), if set. */
const own = (e: Env, m: ModuleName, suffix: string) =>
  (e as Record<string, unknown>)[moduleVariable(m, suffix)] as string | undefined;

/** Where the data lives: the embedded database's folders, each module's database and MongoDB. */
function storesOf(e: Env): Pick<Config, 'dataDir' | 'embeddedTemplateDir' | 'databaseUrls' | 'mongoUrls'> {
  return {
    dataDir: path.resolve(e.DATA_DIR),
    embeddedTemplateDir:
      e.EMBEDDED_TEMPLATE_DIR === 'off'
        ? undefined
        : path.resolve(
            e.EMBEDDED_TEMPLATE_DIR ?? path.join(e.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'toko'),
          ),
    databaseUrls: Object.fromEntries(
      MODULE_NAMES.map((m) => [m, own(e, m, 'DATABASE_URL') ?? e.DATABASE_URL]),
    ) as Record<ModuleName, string | undefined>,
    mongoUrls: Object.fromEntries(
      MONGO_CAPABLE.filter((m) => own(e, m, 'MONGODB_URL')).map((m) => [m, own(e, m, 'MONGODB_URL')!]),
    ),
  };
}

/** Where the modules this process does not host run, and how they are called. */
function remotesOf(e: Env): Pick<Config, 'serviceUrls' | 'serviceKey' | 'remoteTuning'> {
  return {
    serviceUrls: Object.fromEntries(
      MODULE_NAMES.filter((m) => own(e, m, 'SERVICE_URL') && !e.MODULES.includes(m)).map((m) => [
        m,
        own(e, m, 'SERVICE_URL')!,
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
  };
}

/** How events travel: the queues, retries and the outbox relay. */
const eventsOf = (e: Env): Config['events'] => ({
  queuePrefix: e.QUEUE_PREFIX,
  maxAttempts: e.EVENT_MAX_ATTEMPTS,
  backoffMs: e.EVENT_BACKOFF_MS,
  concurrency: e.EVENT_CONCURRENCY,
  partitions: e.EVENT_PARTITIONS,
  pollMs: e.OUTBOX_POLL_MS,
  leaseSeconds: e.OUTBOX_LEASE_SECONDS,
  retentionHours: e.OUTBOX_RETENTION_HOURS,
});

/**
 * Reads and validates the environment once. Throws `ConfigError` whose
 * message is one line naming each bad variable and what it expects.
 */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const { e, settings } = parseEnvironment(source);
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    metrics: { port: e.METRICS_PORT, host: e.METRICS_HOST ?? e.HOST, token: e.METRICS_TOKEN },
    logLevel: e.LOG_LEVEL,
    logPretty: e.LOG_PRETTY ?? e.NODE_ENV === 'development',
    tracing: e.OTEL_EXPORTER_OTLP_ENDPOINT
      ? { endpoint: e.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: e.OTEL_SERVICE_NAME }
      : undefined,
    modules: e.MODULES,
    ...storesOf(e),
    dbPoolMax: e.DB_POOL_MAX,
    storeTimeoutMs: e.STORE_TIMEOUT_MS,
    movedDataPollMs: e.MOVED_DATA_POLL_MS,
    ...remotesOf(e),
    redisUrl: e.REDIS_URL,
    replicas: e.REPLICAS,
    events: eventsOf(e),
    currency: e.SHOP_CURRENCY,
    accountCheckTtlMs: e.ACCOUNT_CHECK_TTL_MS,
    migrateOnStart: e.MIGRATE_ON_START,
    corsOrigins: e.CORS_ORIGINS,
    bodyLimit: e.BODY_LIMIT.toLowerCase(),
    trustedProxies: e.TRUSTED_PROXIES,
    drainDelayMs: e.DRAIN_DELAY_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: Math.max(e.HTTP_REQUEST_TIMEOUT_MS, e.HTTP_HEADERS_TIMEOUT_MS),
    },
    jwt: {
      privateKey: e.JWT_PRIVATE_KEY,
      publicKey: e.JWT_PUBLIC_KEY,
      extraPublicKeys: e.JWT_EXTRA_PUBLIC_KEYS,
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
