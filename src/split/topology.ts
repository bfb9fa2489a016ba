import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { MODULE_DEFINITIONS, MODULE_NAMES, TOKEN_ISSUER, startWaves, type ModuleName } from '../registry.ts';
import { EmbeddedPostgres } from '../db/embedded-postgres.ts';

/** The repository root: two levels up from the sources, three from their compiled copy in dist/. */
const ROOT = path.resolve(
  import.meta.dirname,
  ...(import.meta.url.endsWith('.ts') ? ['..', '..'] : ['..', '..', '..']),
);
/** One service per module, from the registry; started in waves (./registry.ts startWaves). */
const SERVICES: ModuleName[] = [...MODULE_NAMES];
const WAVES = startWaves(MODULE_DEFINITIONS, TOKEN_ISSUER) as ModuleName[][];
/** Connections each service's pool keeps to the shared embedded database (one session serves them all). */
const SPLIT_POOL = 4;
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined } as unknown as Logger;

/** Variables the launcher sets for each service itself (or, for METRICS_PORT, that four services could not share). */
const PER_SERVICE = new Set([
  'MODULES',
  'HOST',
  'PORT',
  'METRICS_PORT',
  'METRICS_HOST',
  'TRUSTED_PROXIES',
  ...SERVICES.map((s) => `${s.toUpperCase()}_SERVICE_URL`),
]);
/** The launcher's own settings: where the split's files go, and its ports. */
const LAUNCHER_INPUT = new Set(['DATA_DIR', 'GATEWAY_PORT', 'SPLIT_BASE_PORT']);

/**
 * What `npm run split` hands every service from its own environment: all of
 * it (OTEL_*, CORS_ORIGINS, REMOTE_OPTIONS, PRODUCT_MONGODB_URL...) except
 * what the launcher decides per service, and npm's own `npm_*` variables.
 * `dropped` names the variables set but not passed on, so the launcher can say so.
 */
export function passedOn(env: NodeJS.ProcessEnv): { env: Record<string, string>; dropped: string[] } {
  const passed: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined || name.startsWith('npm_') || LAUNCHER_INPUT.has(name)) continue;
    if (PER_SERVICE.has(name)) dropped.push(name);
    else passed[name] = value;
  }
  return { env: passed, dropped: dropped.sort() };
}

export interface SplitOptions {
  /** Where each service keeps its embedded database and the gateway its files. */
  dataDir: string;
  gatewayPort: number;
  /** Service ports are basePort+1, +2, ... in module order, unless `ports` names them. */
  basePort: number;
  ports?: Record<ModuleName, number>;
  redisUrl: string;
  /** Extra environment for every service (ADMIN_EMAIL, DATABASE_URL, log level...). */
  env?: Record<string, string>;
  /**
   * Without DATABASE_URL in `env`, one embedded PostgreSQL hosted by this
   * process serves every service, each in its own schema over its own
   * connections (as the single process does): its template directory and logger.
   */
  embedded?: { templateDir?: string; logger: Logger };
  /** Per service, e.g. { product: { PRODUCT_DATABASE_URL: ... } }. */
  serviceEnv?: Partial<Record<ModuleName, Record<string, string>>>;
  /** How each service starts (node's arguments); compiled JavaScript when this file is compiled, else tsx on the sources. */
  command?: string[];
  /** Lines each child prints (JSON logs), for tests and the console. */
  onLine?: (service: string, line: string) => void;
}

export interface SplitTopology {
  gatewayUrl: string;
  /** The services, in the order they start. */
  services: ModuleName[];
  serviceUrl(name: ModuleName): string;
  /** Stops one service (SIGTERM, waits for exit). */
  stop(name: ModuleName): Promise<void>;
  /** Kills one service at once (SIGKILL, no shutdown at all), as a crash would, and waits for it to be gone. */
  kill(name: ModuleName): Promise<void>;
  /** The process id of a running service (for memory figures). */
  pid(name: ModuleName): number | undefined;
  /** Starts a stopped service again and waits until it is ready. */
  start(name: ModuleName): Promise<void>;
  close(): Promise<void>;
}

async function waitForHttp(url: string, timeoutMs: number, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child && child.exitCode !== null) {
      const said = lastLines.get(child) ?? [];
      throw new Error(
        `${url}: the process exited with ${child.exitCode}${said.length ? `; its last lines:\n${said.join('\n')}` : ''}`,
      );
    }
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** The gateway's nginx configuration: the repo's template with loopback upstreams, wrapped for a non-root nginx. */
export function renderGatewayConfig(o: {
  dataDir: string;
  gatewayPort: number;
  ports: Record<ModuleName, number>;
}): string {
  const server = readFileSync(path.join(ROOT, 'deploy', 'nginx', 'toko.conf.template'), 'utf8').replace(
    /\$\{([A-Z_]+)\}/g,
    (_, name: string) => {
      const service = name.replace(/_UPSTREAM$/, '').toLowerCase() as ModuleName;
      if (name === 'GATEWAY_LISTEN') return `127.0.0.1:${o.gatewayPort}`;
      if (name.endsWith('_UPSTREAM') && o.ports[service]) return `127.0.0.1:${o.ports[service]}`;
      throw new Error(`unknown variable ${name} in the nginx template`);
    },
  );
  const tmp = path.join(o.dataDir, 'gateway');
  return `daemon off;
worker_processes 1;
pid ${tmp}/nginx.pid;
error_log ${tmp}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${server}
}
`;
}

/** How a service process is started: compiled JavaScript when this file is, else TypeScript through tsx (tests). */
const SERVICE_COMMAND = import.meta.url.endsWith('.ts')
  ? ['--import', 'tsx', 'src/main.ts']
  : [path.join('dist', 'src', 'main.js')];

/** The running processes of a split topology and what each service is told. */
interface Split {
  opts: SplitOptions;
  ports: Record<ModuleName, number>;
  urls: Record<ModuleName, string>;
  serviceKey: string;
  /** Environment every service gets from the launcher: the shared embedded database, when there is one. */
  shared: Record<string, string>;
  children: Map<ModuleName | 'gateway', ChildProcess>;
}

/** Service ports: `opts.ports`, else basePort+1, +2, ... in module order. */
const servicePorts = (opts: SplitOptions): Record<ModuleName, number> =>
  opts.ports ?? (Object.fromEntries(SERVICES.map((s, i) => [s, opts.basePort + i + 1])) as Record<ModuleName, number>);

/** Without DATABASE_URL: the one embedded PostgreSQL every service shares, started, and what the services are told of it. */
async function sharedDatabase(
  opts: SplitOptions,
): Promise<{ database?: EmbeddedPostgres; env: Record<string, string> }> {
  if (opts.env?.DATABASE_URL) return { env: {} };
  const database = new EmbeddedPostgres({
    dataDir: path.join(opts.dataDir, 'pg'),
    maxConnections: SERVICES.length * Number(opts.env?.DB_POOL_MAX ?? SPLIT_POOL) + 4,
    templateDir: opts.embedded?.templateDir,
    logger: opts.embedded?.logger ?? silent,
  });
  await database.start();
  return { database, env: { DATABASE_URL: database.url, DB_POOL_MAX: String(SPLIT_POOL) } };
}

/** The last lines each child printed, so that a child that dies while starting says why. */
const lastLines = new WeakMap<ChildProcess, string[]>();
const KEEP_LINES = 20;

/** Hands `onLine` each line a child prints, on stdout or stderr, and keeps the last few. */
function pipeLines(name: string, child: ChildProcess, onLine: SplitOptions['onLine']): void {
  let buf = '';
  const kept: string[] = [];
  lastLines.set(child, kept);
  const onData = (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      kept.push(buf.slice(0, i));
      if (kept.length > KEEP_LINES) kept.shift();
      onLine?.(name, buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
}

/** A service's environment: what the launcher decides for it, then the caller's `env`, then its own `serviceEnv`. */
function serviceEnvironment(split: Split, name: ModuleName): Record<string, string> {
  const { opts, urls } = split;
  return {
    PATH: process.env.PATH ?? '',
    MODULES: name,
    HOST: '127.0.0.1',
    PORT: String(split.ports[name]),
    DATA_DIR: path.join(opts.dataDir, name),
    REDIS_URL: opts.redisUrl,
    SERVICE_KEY: split.serviceKey,
    // The gateway reaches every service from loopback: its X-Forwarded-For is the only one believed.
    TRUSTED_PROXIES: '127.0.0.1',
    ...split.shared,
    ...Object.fromEntries(SERVICES.filter((s) => s !== name).map((s) => [`${s.toUpperCase()}_SERVICE_URL`, urls[s]])),
    ...opts.env,
    ...opts.serviceEnv?.[name],
  };
}

/** Starts one service and waits until it answers. */
async function launch(split: Split, name: ModuleName): Promise<void> {
  const child = spawn(process.execPath, split.opts.command ?? SERVICE_COMMAND, {
    cwd: ROOT,
    env: serviceEnvironment(split, name),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  split.children.set(name, child);
  pipeLines(name, child, split.opts.onLine);
  await waitForHttp(`${split.urls[name]}/health`, 60_000, child);
}

/** Writes the gateway's configuration, starts nginx on it and waits until it answers. */
async function launchGateway(split: Split): Promise<void> {
  const { dataDir, gatewayPort } = split.opts;
  mkdirSync(path.join(dataDir, 'gateway'), { recursive: true });
  const conf = path.join(dataDir, 'gateway', 'nginx.conf');
  writeFileSync(conf, renderGatewayConfig({ dataDir, gatewayPort, ports: split.ports }));
  const gateway = spawn('nginx', ['-c', conf, '-p', path.join(dataDir, 'gateway')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  split.children.set('gateway', gateway);
  pipeLines('gateway', gateway, split.opts.onLine);
  await waitForHttp(`http://127.0.0.1:${gatewayPort}/health`, 15_000, gateway);
}

/** Stops one process (SIGTERM by default) and waits for its exit; nothing when it is not running. */
async function stopChild(
  split: Split,
  name: ModuleName | 'gateway',
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<void> {
  const child = split.children.get(name);
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/**
 * The four services as plain `node` processes (MODULES=<one each>) plus the
 * nginx gateway, on loopback: what docker-compose.split.yml describes, with
 * no Docker. Events go over BullMQ on `redisUrl`. Without a DATABASE_URL the
 * services share one embedded PostgreSQL this process hosts (the compose
 * file gives each service a server of its own instead).
 */
export async function startSplit(opts: SplitOptions): Promise<SplitTopology> {
  const ports = servicePorts(opts);
  const urls = Object.fromEntries(SERVICES.map((s) => [s, `http://127.0.0.1:${ports[s]}`])) as Record<
    ModuleName,
    string
  >;
  const { database, env: shared } = await sharedDatabase(opts);
  const split: Split = { opts, ports, urls, serviceKey: randomBytes(24).toString('hex'), shared, children: new Map() };
  try {
    // Each wave once the services it needs answer (the token issuer first: the others fetch its public keys).
    for (const wave of WAVES) await Promise.all(wave.map((name) => launch(split, name)));
    await launchGateway(split);
  } catch (err) {
    await Promise.all([...split.children.keys()].map((n) => stopChild(split, n)));
    await database?.stop();
    throw err;
  }

  return {
    gatewayUrl: `http://127.0.0.1:${opts.gatewayPort}`,
    services: [...SERVICES],
    serviceUrl: (name) => urls[name],
    stop: (name) => stopChild(split, name),
    kill: (name) => stopChild(split, name, 'SIGKILL'),
    pid: (name) => split.children.get(name)?.pid,
    start: async (name) => {
      await launch(split, name);
      await waitForHttp(`${urls[name]}/health/ready`, 30_000, split.children.get(name));
    },
    close: async () => {
      await stopChild(split, 'gateway');
      await Promise.all(SERVICES.map((n) => stopChild(split, n)));
      await database?.stop();
    },
  };
}
