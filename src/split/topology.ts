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
  'REPLICAS',
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
  /**
   * Service ports are basePort+1, +2, ... in module order (each service's
   * first replica), then its other replicas' ports in the same order, then the
   * ports of the internal balancers, unless `ports` and `balancerPorts` name
   * them: `ports` one per replica (a number for a service of one replica).
   */
  basePort: number;
  ports?: Record<ModuleName, number | number[]>;
  /** Processes per service (default 1 each). Several need Redis, which the split always has. */
  replicas?: Partial<Record<ModuleName, number>>;
  /**
   * For each service of several replicas, the loopback port where the gateway
   * spreads the other services' calls (`<MODULE>_SERVICE_URL`) over its replicas.
   */
  balancerPorts?: Partial<Record<ModuleName, number>>;
  /** Starts a service process again when it exits without being told to (as Compose's restart policy does). */
  restart?: boolean;
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
  /** How many processes serve a service. */
  replicas(name: ModuleName): number;
  /** A service's own address: its first replica's, or that of `replica` (counted from 1). */
  serviceUrl(name: ModuleName, replica?: number): string;
  /** Where the other services call it: its own address when it runs once, else the gateway's internal balancer of its replicas. */
  callUrl(name: ModuleName): string;
  /** Stops one service process (SIGTERM, waits for exit): the first replica unless `replica` says which. */
  stop(name: ModuleName, replica?: number): Promise<void>;
  /** Kills one service process at once (SIGKILL, no shutdown at all), as a crash would, and waits for it to be gone. */
  kill(name: ModuleName, replica?: number): Promise<void>;
  /** The process id of a running service process (for memory figures). */
  pid(name: ModuleName, replica?: number): number | undefined;
  /** Starts a stopped service process again and waits until it is ready. */
  start(name: ModuleName, replica?: number): Promise<void>;
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

/** A port list per service, from one port or several. */
const portList = (ports: number | number[]): number[] => (Array.isArray(ports) ? ports : [ports]);

/**
 * The loopback listener where the other services reach a service of several
 * replicas: what a Kubernetes Service or Compose's DNS name is for them. A
 * call that cannot connect goes to the next replica (nginx sends a POST on
 * only when it never reached a replica); the HTTP client's own retries cover the rest.
 */
const balancer = (m: ModuleName, port: number, replicas: number) => `
# ${m}'s replicas for the other services' calls (${m.toUpperCase()}_SERVICE_URL): loopback only, never public.
server {
  listen 127.0.0.1:${port};
  server_tokens off;
  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $http_host;
  proxy_connect_timeout 1s;
  proxy_read_timeout 30s;
  proxy_next_upstream error timeout http_502 http_503;
  proxy_next_upstream_tries ${replicas};
  location / { proxy_pass http://toko_${m}; }
}`;

/**
 * The gateway's nginx configuration: the repo's template with loopback
 * upstreams, one `server` per replica of a service, and for each service of
 * several replicas the internal balancer (`balancers`) the other services
 * call; wrapped for a non-root nginx.
 */
export function renderGatewayConfig(o: {
  dataDir: string;
  gatewayPort: number;
  ports: Record<ModuleName, number | number[]>;
  balancers?: Partial<Record<ModuleName, number>>;
  /** Replicas elsewhere than on loopback (`address:port` each), in place of `ports`' loopback ones. */
  addresses?: Partial<Record<ModuleName, string[]>>;
}): string {
  const serviceOf = (variable: string) => variable.replace(/_UPSTREAM$/, '').toLowerCase() as ModuleName;
  const server = readFileSync(path.join(ROOT, 'deploy', 'nginx', 'toko.conf.template'), 'utf8')
    // `server ${USER_UPSTREAM} <parameters>;` once per replica, each with the same parameters.
    .replace(/server \$\{([A-Z_]+_UPSTREAM)\}([^;]*);/g, (line, variable: string, parameters: string) => {
      const ports = o.ports[serviceOf(variable)];
      if (ports === undefined) return line;
      const servers = o.addresses?.[serviceOf(variable)] ?? portList(ports).map((p) => `127.0.0.1:${p}`);
      return servers.map((a) => `server ${a}${parameters};`).join(' ');
    })
    .replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
      if (name === 'GATEWAY_LISTEN') return `127.0.0.1:${o.gatewayPort}`;
      throw new Error(`unknown variable ${name} in the nginx template`);
    });
  const balancers = SERVICES.filter((m) => o.balancers?.[m] !== undefined).map((m) =>
    balancer(m, o.balancers![m]!, portList(o.ports[m]).length),
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
${server}${balancers.join('\n')}
}
`;
}

/** How a service process is started: compiled JavaScript when this file is, else TypeScript through tsx (tests). */
const SERVICE_COMMAND = import.meta.url.endsWith('.ts')
  ? ['--import', 'tsx', 'src/main.ts']
  : [path.join('dist', 'src', 'main.js')];

/** A running process of the split: a replica of a service (counted from 1), or the gateway. */
type ProcessKey = `${ModuleName}#${number}` | 'gateway';
const keyOf = (name: ModuleName, replica: number): ProcessKey => `${name}#${replica}`;

/** The running processes of a split topology and what each service is told. */
interface Split {
  opts: SplitOptions;
  counts: Record<ModuleName, number>;
  /** Each service's ports, one per replica. */
  ports: Record<ModuleName, number[]>;
  /** The internal balancer's port of each service of several replicas. */
  balancers: Partial<Record<ModuleName, number>>;
  /** Where the other services call each service. */
  callUrls: Record<ModuleName, string>;
  serviceKey: string;
  /** Environment every service gets from the launcher: the shared embedded database, when there is one. */
  shared: Record<string, string>;
  children: Map<ProcessKey, ChildProcess>;
  /** Processes stopped on purpose: never started again. */
  stopped: WeakSet<ChildProcess>;
  /** Exits in a row soon after a start, per process: the restart waits longer each time. */
  quickExits: Map<ProcessKey, number>;
  /** True from a successful start until `close`, with `restart`: a process that exits is started again. */
  supervising: boolean;
}

/** How a service process is named in the console: the service alone when it runs once, else `user#2`. */
const labelOf = (split: Split, name: ModuleName, replica: number) =>
  split.counts[name] === 1 ? name : `${name}#${replica}`;

/**
 * Service ports: `opts.ports` (and `opts.balancerPorts`), else basePort+1,
 * +2, ... for each service's first replica in module order, its other
 * replicas' after those, then the balancers'.
 */
function servicePorts(
  opts: SplitOptions,
  counts: Record<ModuleName, number>,
): { ports: Record<ModuleName, number[]>; balancers: Partial<Record<ModuleName, number>> } {
  const several = SERVICES.filter((s) => counts[s] > 1);
  if (opts.ports) {
    const given = opts.ports;
    const ports = Object.fromEntries(
      SERVICES.map((s) => {
        const list = portList(given[s]);
        if (list.length < counts[s]) throw new Error(`ports: ${s} runs ${counts[s]} replicas but has ${list.length}`);
        return [s, list.slice(0, counts[s])];
      }),
    ) as Record<ModuleName, number[]>;
    const balancers: Partial<Record<ModuleName, number>> = {};
    for (const s of several) {
      const port = opts.balancerPorts?.[s];
      if (port === undefined) throw new Error(`balancerPorts: ${s} runs ${counts[s]} replicas and needs one`);
      balancers[s] = port;
    }
    return { ports, balancers };
  }
  let next = opts.basePort + SERVICES.length;
  const ports = Object.fromEntries(SERVICES.map((s, i) => [s, [opts.basePort + i + 1]])) as Record<
    ModuleName,
    number[]
  >;
  for (const s of several) for (let r = 2; r <= counts[s]; r++) ports[s].push(++next);
  const balancers = Object.fromEntries(several.map((s) => [s, ++next])) as Partial<Record<ModuleName, number>>;
  return { ports, balancers };
}

/** Without DATABASE_URL: the one embedded PostgreSQL every service shares, started, and what the services are told of it. */
async function sharedDatabase(
  opts: SplitOptions,
  processes: number,
): Promise<{ database?: EmbeddedPostgres; env: Record<string, string> }> {
  if (opts.env?.DATABASE_URL) return { env: {} };
  const database = new EmbeddedPostgres({
    dataDir: path.join(opts.dataDir, 'pg'),
    maxConnections: processes * Number(opts.env?.DB_POOL_MAX ?? SPLIT_POOL) + 4,
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

/**
 * A service process's environment: what the launcher decides for it, then the
 * caller's `env`, then its own `serviceEnv`. Its replicas share its DATA_DIR
 * (the user service's signing keys, which the first replica writes before the others start).
 */
function serviceEnvironment(split: Split, name: ModuleName, replica: number): Record<string, string> {
  const { opts } = split;
  return {
    PATH: process.env.PATH ?? '',
    MODULES: name,
    HOST: '127.0.0.1',
    PORT: String(split.ports[name][replica - 1]),
    DATA_DIR: path.join(opts.dataDir, name),
    REDIS_URL: opts.redisUrl,
    SERVICE_KEY: split.serviceKey,
    // The gateway reaches every service from loopback: its X-Forwarded-For is the only one believed.
    TRUSTED_PROXIES: '127.0.0.1',
    ...(split.counts[name] > 1 ? { REPLICAS: String(split.counts[name]) } : {}),
    ...split.shared,
    ...Object.fromEntries(
      SERVICES.filter((s) => s !== name).map((s) => [`${s.toUpperCase()}_SERVICE_URL`, split.callUrls[s]]),
    ),
    ...opts.env,
    ...opts.serviceEnv?.[name],
  };
}

const serviceUrl = (split: Split, name: ModuleName, replica: number) =>
  `http://127.0.0.1:${split.ports[name][replica - 1]}`;

/** Starts one service process and waits until it answers. */
async function launch(split: Split, name: ModuleName, replica: number): Promise<void> {
  const key = keyOf(name, replica);
  const child = spawn(process.execPath, split.opts.command ?? SERVICE_COMMAND, {
    cwd: ROOT,
    env: serviceEnvironment(split, name, replica),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  split.children.set(key, child);
  pipeLines(labelOf(split, name, replica), child, split.opts.onLine);
  const started = Date.now();
  child.once('exit', (code, signal) =>
    restartAfterExit(split, name, replica, child, Date.now() - started, code, signal),
  );
  await waitForHttp(`${serviceUrl(split, name, replica)}/health`, 60_000, child);
}

/** A process that ran at least this long before it exited starts again at once; one that did not, after a growing wait. */
const STEADY_MS = 10_000;
const RESTART_MAX_WAIT_MS = 30_000;

/**
 * With `restart`, a service process that exits without being stopped is
 * started again (on the same port, with the same environment): at once when
 * it had been running a while, after 0.5 s, 1 s, 2 s ... (at most 30 s) while
 * it keeps exiting soon after each start.
 */
function restartAfterExit(
  split: Split,
  name: ModuleName,
  replica: number,
  child: ChildProcess,
  ranMs: number,
  code: number | null,
  signal: NodeJS.Signals | null,
): void {
  if (!split.supervising || split.stopped.has(child)) return;
  const key = keyOf(name, replica);
  const label = labelOf(split, name, replica);
  const quick = ranMs < STEADY_MS ? (split.quickExits.get(key) ?? 0) + 1 : 0;
  split.quickExits.set(key, quick);
  const wait = quick === 0 ? 0 : Math.min(RESTART_MAX_WAIT_MS, 500 * 2 ** (quick - 1));
  split.opts.onLine?.(
    label,
    `toko split: ${label} exited (${signal ?? `code ${code}`}); starting it again${wait ? ` in ${wait} ms` : ''}`,
  );
  setTimeout(() => {
    if (!split.supervising || split.children.get(key) !== child || split.stopped.has(child)) return;
    launch(split, name, replica).catch((err: unknown) =>
      split.opts.onLine?.(label, `toko split: ${label} did not start again: ${errorLine(err)}`),
    );
  }, wait);
}

const errorLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/** Writes the gateway's configuration, starts nginx on it and waits until it answers. */
async function launchGateway(split: Split): Promise<void> {
  const { dataDir, gatewayPort } = split.opts;
  mkdirSync(path.join(dataDir, 'gateway'), { recursive: true });
  const conf = path.join(dataDir, 'gateway', 'nginx.conf');
  writeFileSync(conf, renderGatewayConfig({ dataDir, gatewayPort, ports: split.ports, balancers: split.balancers }));
  const gateway = spawn('nginx', ['-c', conf, '-p', path.join(dataDir, 'gateway')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  split.children.set('gateway', gateway);
  pipeLines('gateway', gateway, split.opts.onLine);
  await waitForHttp(`http://127.0.0.1:${gatewayPort}/health`, 15_000, gateway);
}

/** Stops one process (SIGTERM by default) and waits for its exit; nothing when it is not running. */
async function stopChild(split: Split, key: ProcessKey, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  const child = split.children.get(key);
  if (!child) return;
  // Marked even when it already exited: a restart waiting in its backoff then does not start it again.
  split.stopped.add(child);
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

/** Every replica of every service: [service, replica] pairs in module order. */
const everyProcess = (split: Split): [ModuleName, number][] =>
  SERVICES.flatMap((s) => Array.from({ length: split.counts[s] }, (_, i): [ModuleName, number] => [s, i + 1]));

/**
 * Starts every process: with several replicas of a service the others call it through the gateway's balancer, so
 * nginx comes first; each wave's first replicas once the services they need answer (the token issuer first: the
 * others fetch its public keys), then every other replica (the first has migrated and written the signing keys).
 * On a failure, stops what started and the shared database, and throws.
 */
async function launchAll(split: Split, database: EmbeddedPostgres | undefined): Promise<void> {
  const several = SERVICES.some((s) => split.counts[s] > 1);
  try {
    if (several) await launchGateway(split);
    for (const wave of WAVES) await Promise.all(wave.map((name) => launch(split, name, 1)));
    await Promise.all(
      everyProcess(split)
        .filter(([, r]) => r > 1)
        .map(([name, r]) => launch(split, name, r)),
    );
    if (!several) await launchGateway(split);
  } catch (err) {
    await Promise.all([...split.children.keys()].map((k) => stopChild(split, k)));
    await database?.stop();
    throw err;
  }
}

/**
 * The four services as plain `node` processes (MODULES=<one each>, as many
 * of each as `replicas` says) plus the nginx gateway, on loopback: what
 * docker-compose.split.yml describes, with no Docker. Events go over BullMQ on
 * `redisUrl`. Without a DATABASE_URL the services share one embedded
 * PostgreSQL this process hosts (the compose file gives each service a server
 * of its own instead).
 */
export async function startSplit(opts: SplitOptions): Promise<SplitTopology> {
  const counts = Object.fromEntries(SERVICES.map((s) => [s, opts.replicas?.[s] ?? 1])) as Record<ModuleName, number>;
  for (const s of SERVICES)
    if (!Number.isInteger(counts[s]) || counts[s] < 1) throw new Error(`replicas: ${s} must run at least once`);
  const { ports, balancers } = servicePorts(opts, counts);
  const callUrls = Object.fromEntries(
    SERVICES.map((s) => [s, `http://127.0.0.1:${balancers[s] ?? ports[s][0]}`]),
  ) as Record<ModuleName, string>;
  const { database, env: shared } = await sharedDatabase(
    opts,
    SERVICES.reduce((n, s) => n + counts[s], 0),
  );
  const split: Split = {
    opts,
    counts,
    ports,
    balancers,
    callUrls,
    serviceKey: randomBytes(24).toString('hex'),
    shared,
    children: new Map(),
    stopped: new WeakSet(),
    quickExits: new Map(),
    supervising: false,
  };
  await launchAll(split, database);

  split.supervising = opts.restart === true;
  const replicaOf = (name: ModuleName, replica = 1): number => {
    if (!Number.isInteger(replica) || replica < 1 || replica > counts[name])
      throw new Error(`${name} has no replica ${replica} (it runs ${counts[name]})`);
    return replica;
  };
  return {
    gatewayUrl: `http://127.0.0.1:${opts.gatewayPort}`,
    services: [...SERVICES],
    replicas: (name) => counts[name],
    serviceUrl: (name, replica) => serviceUrl(split, name, replicaOf(name, replica)),
    callUrl: (name) => callUrls[name],
    stop: (name, replica) => stopChild(split, keyOf(name, replicaOf(name, replica))),
    kill: (name, replica) => stopChild(split, keyOf(name, replicaOf(name, replica)), 'SIGKILL'),
    pid: (name, replica) => split.children.get(keyOf(name, replicaOf(name, replica)))?.pid,
    start: async (name, replica) => {
      const r = replicaOf(name, replica);
      await launch(split, name, r);
      await waitForHttp(`${serviceUrl(split, name, r)}/health/ready`, 30_000, split.children.get(keyOf(name, r)));
    },
    close: async () => {
      split.supervising = false;
      await stopChild(split, 'gateway');
      await Promise.all(everyProcess(split).map(([n, r]) => stopChild(split, keyOf(n, r))));
      await database?.stop();
    },
  };
}
