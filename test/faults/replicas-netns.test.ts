import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MODULE_NAMES, type ModuleName } from '../../src/registry.ts';
import { renderGatewayConfig } from '../../src/split/topology.ts';
import { call, registerCustomer } from '../helpers/http.ts';
import { Hosts, netnsAvailable, type Host } from '../helpers/netns.ts';
import { PostgresServer, postgresBin } from '../helpers/postgres-server.ts';
import { RedisServer } from '../helpers/redis-server.ts';
import { freePorts, waitFor } from '../helpers/wait.ts';
import { FAST_RECOVERY, Shop, report, type Notification, type Order } from './harness.ts';

/**
 * toko as two replicas of the single process, each on a host of its own (a
 * network namespace with its own address), behind the gateway built from the
 * repo's nginx template, on one PostgreSQL and one Redis (private servers the
 * test starts, reachable from those hosts only). Under a steady load of
 * reads and orders: each replica is killed (-9) and started again; one
 * replica's link is down for 7 s; then a rolling restart (SIGTERM one at a
 * time). Counted: failed GETs, failed POSTs (and again after the client's one
 * retry with the same Idempotency-Key), duplicate orders, oversold stock,
 * lost or doubled notifications, and how long a restarted replica took to
 * serve again.
 */
const ROOT = path.resolve(import.meta.dirname, '..', '..');
const PORT = 3000;
const REPLICAS = 2;
/**
 * How long a rollout waits after a replica is ready before it takes down the next: the gateway skips a replica
 * for `fail_timeout` (3s) after it failed, so taking the other one down sooner leaves it no live replica (what an
 * orchestrator's minimum ready time is for).
 */
const SETTLE_MS = 4000;
const can = netnsAvailable() && postgresBin() !== undefined;
if (!can && process.env.CI) throw new Error('the replica fault suite needs root, iproute2 (ip netns) and PostgreSQL');

const { privateKey, publicKey } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

class Replica {
  child: ChildProcess | undefined;
  readonly lines: string[] = [];
  constructor(
    readonly host: Host,
    private readonly env: Record<string, string>,
  ) {}

  get url(): string {
    return `http://${this.host.address}:${PORT}`;
  }

  async start(): Promise<number> {
    const started = Date.now();
    const child = spawn('ip', ['netns', 'exec', this.host.name, process.execPath, '--import', 'tsx', 'src/main.ts'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    const keep = (d: Buffer) => {
      this.lines.push(...d.toString().split('\n').filter(Boolean));
      if (this.lines.length > 400) this.lines.splice(0, this.lines.length - 400);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(
      `replica on ${this.host.name} ready`,
      async () => {
        if (child.exitCode !== null)
          throw new Error(`replica on ${this.host.name} exited: ${this.lines.slice(-5).join('\n')}`);
        const res = await fetch(`${this.url}/health/ready`, { signal: AbortSignal.timeout(1000) }).catch(
          () => undefined,
        );
        return res?.ok ? true : undefined;
      },
      90_000,
      50,
    );
    return Date.now() - started;
  }

  async kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** The error lines it logged (pino level 50 and up). */
  errors(): string[] {
    return this.lines.filter((l) => /"level":(50|60)/.test(l));
  }
}

interface Tally {
  gets: number;
  getFailures: string[];
  posts: number;
  postFailures: { key: string; status: number; text: string }[];
  orders: Map<string, string>;
  getLatencies: number[];
  postLatencies: number[];
}

/** A steady mixed load through the gateway until `stop` resolves: 8 clients, reads and orders. */
async function load(
  gateway: string,
  shop: { token: string; products: string[] },
  stop: Promise<void>,
  tag: string,
): Promise<Tally> {
  const t: Tally = {
    gets: 0,
    getFailures: [],
    posts: 0,
    postFailures: [],
    orders: new Map(),
    getLatencies: [],
    postLatencies: [],
  };
  let done = false;
  void stop.then(() => (done = true));
  let n = 0;
  await Promise.all(
    Array.from({ length: 8 }, async (_, worker) => {
      while (!done) {
        const i = n++;
        const started = Date.now();
        if (i % 5 === 4) {
          const key = `${tag}-${worker}-${i}`;
          const res = await call(gateway, 'POST', '/api/v1/orders', {
            token: shop.token,
            body: { items: [{ productId: shop.products[i % shop.products.length], quantity: 1 }] },
            headers: { 'idempotency-key': key },
          }).catch((err: unknown) => ({ status: 0, body: {} as Record<string, unknown>, text: String(err) }));
          t.posts++;
          if (res.status === 201) t.orders.set(key, res.body.id as string);
          else t.postFailures.push({ key, status: res.status, text: res.text.slice(0, 160) });
          t.postLatencies.push(Date.now() - started);
        } else {
          const paths = ['/api/v1/products?limit=5', `/api/v1/products/${shop.products[i % 3]}`, '/api/v1/users/me'];
          const p = paths[i % 3]!;
          const res = await call(gateway, 'GET', p, { token: shop.token }).catch((err: unknown) => ({
            status: 0,
            text: String(err),
          }));
          t.gets++;
          if (res.status !== 200) t.getFailures.push(`${p} ${res.status} ${res.text.slice(0, 120)}`);
          t.getLatencies.push(Date.now() - started);
        }
      }
    }),
  );
  return t;
}

/**
 * The requests the gateway had sent to a replica that then reset the connection (nginx's error log, from line
 * `from` on), by method: a keyed order among them went on to the other replica, any other POST failed.
 */
function resetsSent(errorLog: string, from: number): Record<string, number> {
  const lines = existsSync(errorLog) ? readFileSync(errorLog, 'utf8').split('\n').slice(from) : [];
  const counts: Record<string, number> = {};
  for (const l of lines) {
    const method = /reset by peer\) while reading response header.*request: "([A-Z]+) /.exec(l)?.[1];
    if (method) counts[method] = (counts[method] ?? 0) + 1;
  }
  return counts;
}
const lineCount = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').length - 1 : 0);

const p = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))];

describe.skipIf(!can)('replicas on hosts of their own', () => {
  const tag = 'rp';
  const hosts = new Hosts(tag, 7);
  const dir = mkdtempSync(path.join(tmpdir(), 'toko-replicas-'));
  let pg: PostgresServer;
  let redis: RedisServer;
  let nginx: ChildProcess;
  let gateway: string;
  const replicas: Replica[] = [];
  const shopView = new Shop(() => gateway);

  beforeAll(async () => {
    // Replicas run what `npm start` runs: the compiled JavaScript.
    execFileSync(process.execPath, ['scripts/ensure-build.mjs'], { cwd: ROOT, stdio: 'inherit' });
    Hosts.sweep(tag);
    const machines = Array.from({ length: REPLICAS }, () => hosts.add());
    const [pgPort, redisPort, gatewayPort] = await freePorts(3);
    pg = new PostgresServer(
      pgPort!,
      postgresBin()!,
      machines.map((h) => h.gateway),
    );
    pg.start();
    redis = new RedisServer(redisPort!, { bind: machines.map((h) => h.gateway) });
    await redis.start();
    const queuePrefix = `tr${randomBytes(3).toString('hex')}`;
    for (const host of machines)
      replicas.push(
        new Replica(host, {
          ...FAST_RECOVERY,
          LOG_LEVEL: 'info',
          NODE_ENV: 'production',
          HOST: '0.0.0.0',
          PORT: String(PORT),
          DATABASE_URL: `postgres://postgres@${host.gateway}:${pgPort}/postgres`,
          REDIS_URL: `redis://${host.gateway}:${redisPort}`,
          QUEUE_PREFIX: queuePrefix,
          REPLICAS: String(REPLICAS),
          JWT_PRIVATE_KEY: privateKey,
          JWT_PUBLIC_KEY: publicKey,
          // Longer than the gateway keeps an idle connection (4 s): every connection it holds to a draining replica ends first.
          DRAIN_DELAY_MS: '5000',
          TRUSTED_PROXIES: '10.231.0.0/16',
          REGISTER_MAX_PER_CLIENT: '1000000',
          ORDER_PENDING_TIMEOUT_SECONDS: '5',
        }),
      );
    await Promise.all(replicas.map((r) => r.start()));
    // The gateway `npm run split` writes, with every module's upstream listing the replicas' hosts.
    const gw = path.join(dir, 'gateway');
    for (const sub of ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) mkdirSync(path.join(gw, sub), { recursive: true });
    const everywhere = machines.map((h) => `${h.address}:${PORT}`);
    writeFileSync(
      path.join(gw, 'nginx.conf'),
      renderGatewayConfig({
        dataDir: dir,
        gatewayPort: gatewayPort!,
        ports: Object.fromEntries(MODULE_NAMES.map((m) => [m, PORT])) as Record<ModuleName, number>,
        addresses: Object.fromEntries(MODULE_NAMES.map((m) => [m, everywhere])),
      }),
    );
    nginx = spawn('nginx', ['-c', path.join(gw, 'nginx.conf'), '-p', gw], { stdio: 'ignore' });
    gateway = `http://127.0.0.1:${gatewayPort}`;
    await waitFor(
      'the gateway',
      async () => ((await call(gateway, 'GET', '/health').catch(() => undefined))?.status === 200 ? true : undefined),
      20_000,
      100,
    );
  }, 240_000);

  afterAll(async () => {
    for (const h of hosts.hosts) hosts.link(h, true);
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
    // SIGTERM, not SIGKILL: nginx's master then stops its worker, which a killed master would leave listening.
    if (nginx && nginx.exitCode === null) {
      const exited = once(nginx, 'exit');
      nginx.kill('SIGTERM');
      await Promise.race([exited, sleep(5000).then(() => nginx.kill('SIGKILL'))]);
    }
    await redis?.stop();
    pg?.stop();
    hosts.close();
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  /**
   * Wrong passwords for one account from one client, one after another, each replica in turn. The replicas believe
   * X-Forwarded-For from the test's hosts (TRUSTED_PROXIES), as they would from the gateway.
   */
  const guesses = async (email: string, n: number, via: () => string) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++)
      out.push(
        (
          await call(via(), 'POST', '/api/v1/users/login', {
            body: { email, password: 'not-the-password' },
            headers: { 'x-forwarded-for': '198.51.100.7' },
          })
        ).status,
      );
    return out;
  };
  let turn = 0;
  const eachReplica = () => replicas[turn++ % REPLICAS]!.url;

  it('counts a login limit across replicas: exactly the limit of wrong passwords, then 429 on either', async () => {
    const u = await registerCustomer(gateway);
    const statuses = await guesses(u.email, 12, eachReplica);
    report('login limit across 2 replicas (LOGIN_MAX_FAILURES=5)', { statuses: statuses.join(' ') });
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(new Set(statuses.slice(5))).toEqual(new Set([429]));
  });

  it('refuses an admin demoted or deactivated through one replica on the other at its next request', async () => {
    const admin = await shopView.admin();
    const u = await registerCustomer(gateway);
    const [a, b] = [replicas[0]!.url, replicas[1]!.url];
    const change = (body: Record<string, unknown>) =>
      call(a, 'PATCH', `/api/v1/users/${u.id}`, { token: admin, body }).then((r) => r.status);
    expect(await change({ role: 'admin' })).toBe(200);
    const token = await new Shop(() => a).login(u.email, u.password);
    // An admin on both replicas (each keeps the account check in its cache).
    for (const url of [a, b]) expect((await call(url, 'GET', '/api/v1/users?limit=1', { token })).status).toBe(200);
    expect(await change({ role: 'customer' })).toBe(200);
    expect((await call(b, 'GET', '/api/v1/users?limit=1', { token })).status).toBe(403);
    expect(await change({ isActive: false })).toBe(200);
    expect((await call(b, 'GET', '/api/v1/users/me', { token })).status).toBe(401);
  });

  it('loses no request, order or notification when replicas are killed, cut off and rolled', async () => {
    const admin = await shopView.admin();
    const products = [
      await shopView.product(admin, 100_000),
      await shopView.product(admin, 100_000),
      await shopView.product(admin, 100_000),
    ];
    const customer = await shopView.customer();
    const shop = { token: customer.token, products };
    const figures: Record<string, unknown> = {};
    const tallies: Tally[] = [];

    const during = async (name: string, scenario: () => Promise<void>) => {
      let end!: () => void;
      const stop = new Promise<void>((r) => (end = r));
      const errorLog = path.join(dir, 'gateway', 'error.log');
      const logFrom = lineCount(errorLog);
      const running = load(gateway, shop, stop, name.replace(/\W+/g, '_'));
      const started = Date.now();
      await sleep(1000);
      await scenario();
      await sleep(1000);
      end();
      const t = await running;
      tallies.push(t);
      figures[name] = {
        rps: Math.round((t.gets + t.posts) / ((Date.now() - started) / 1000)),
        gets: t.gets,
        failedGets: t.getFailures.length,
        posts: t.posts,
        failedPosts: t.postFailures.length,
        postStatuses: [...new Set(t.postFailures.map((f) => f.status))],
        getP99ms: p(t.getLatencies, 0.99),
        getMaxMs: p(t.getLatencies, 1),
        postP99ms: p(t.postLatencies, 0.99),
        firstFailedGets: t.getFailures.slice(0, 2),
        firstFailedPosts: t.postFailures.slice(0, 2).map((f) => f.text),
        gatewayResetsAfterSending: resetsSent(errorLog, logFrom),
      };
      return t;
    };

    // kill -9 each replica in turn, and start it again.
    const killed = await during('kill -9', async () => {
      const back: number[] = [];
      for (const r of replicas) {
        await r.kill('SIGKILL');
        await sleep(1000);
        back.push(await r.start());
        await sleep(SETTLE_MS);
      }
      figures.restartMs = back;
    });
    // One replica's link down for 7 s.
    const cut = await during('link down', async () => {
      hosts.link(replicas[0]!.host, false);
      await sleep(7000);
      hosts.link(replicas[0]!.host, true);
    });
    // A rolling restart: SIGTERM one replica at a time.
    const rolled = await during('rolling restart', async () => {
      for (const r of replicas) {
        await r.kill('SIGTERM');
        await r.start();
        await sleep(SETTLE_MS);
      }
    });

    // The client's one retry, with the same key, of every order that failed.
    let retriedOk = 0;
    const stillFailed: string[] = [];
    for (const t of tallies)
      for (const f of t.postFailures) {
        const i = Number(f.key.split('-').at(-1));
        const res = await shopView.place(
          customer.token,
          [{ productId: products[i % products.length]!, quantity: 1 }],
          f.key,
        );
        if (res.status === 201 || res.status === 200) retriedOk++;
        else stillFailed.push(`${f.key} ${res.status} ${res.text.slice(0, 120)}`);
      }

    const orders = await waitFor(
      'every order settled',
      async () => {
        const all = await shopView.all<Order>(`/api/v1/orders?userId=${customer.id}`, admin);
        return all.every((o) => o.status !== 'pending') ? all : undefined;
      },
      60_000,
      500,
    );
    const confirmed = orders.filter((o) => o.status === 'confirmed');
    const expectedKeys = tallies.reduce((n, t) => n + t.orders.size + t.postFailures.length, 0);
    await waitFor(
      'a confirmation for every confirmed order',
      async () => {
        const ns = (await shopView.all<Notification>(`/api/v1/notifications?userId=${customer.id}`, admin)).filter(
          (n) => n.template === 'order-confirmed',
        );
        return ns.length >= confirmed.length ? true : undefined;
      },
      60_000,
      500,
    );
    await sleep(2000);
    const finalNotes = (await shopView.all<Notification>(`/api/v1/notifications?userId=${customer.id}`, admin)).filter(
      (n) => n.template === 'order-confirmed',
    );
    const per = (id: string) => finalNotes.filter((n) => n.body.includes(id)).length;
    let oversold = 0;
    for (const id of products) {
      const taken = confirmed.flatMap((o) => o.items).filter((l) => l.productId === id).length;
      if ((await shopView.stock(id)) !== 100_000 - taken) oversold++;
    }
    report('2 replicas on hosts of their own (kill -9 each, link down 7 s, rolling restart)', {
      ...figures,
      retriedOk,
      stillFailed: stillFailed.length,
      orders: orders.length,
      confirmed: confirmed.length,
      rejected: orders.filter((o) => o.status === 'rejected').length,
      keys: expectedKeys,
      lost: confirmed.filter((o) => per(o.id) === 0).length,
      doubled: confirmed.filter((o) => per(o.id) > 1).length,
      stockWrong: oversold,
    });

    expect(killed.getFailures).toEqual([]);
    // Orders in flight on a killed replica fail (at most one per client); the gateway never sends a POST twice.
    expect(killed.postFailures.length).toBeLessThanOrEqual(8 * REPLICAS);
    expect(cut.getFailures).toEqual([]);
    // Orders already sent to the replica that was cut off (it lost its database too) may fail; each client holds one.
    expect(cut.postFailures.length).toBeLessThanOrEqual(8);
    expect(rolled.getFailures).toEqual([]);
    // An order the gateway wrote on a connection the stopping replica's closing listener then reset goes on to the
    // other replica (it carries an Idempotency-Key): a rolling restart fails nothing.
    expect(rolled.postFailures).toEqual([]);
    expect(stillFailed).toEqual([]);
    // One order per key, whatever its first answer was.
    // One confirmed order per key. An attempt cut off after placing its order leaves that order to the recovery
    // pass, which rejects it; the retry with the same key then places the order again (docs/failures.md).
    expect(confirmed.length).toBe(expectedKeys);
    expect(oversold).toBe(0);
    expect(confirmed.filter((o) => per(o.id) !== 1).map((o) => [o.id, per(o.id)])).toEqual([]);
    expect(replicas.flatMap((r) => r.errors())).toEqual([]);
  }, 600_000);

  it('keeps at most the limit per replica, and no 5xx, while Redis is down', async () => {
    const u = await registerCustomer(gateway);
    await redis.stop();
    try {
      const statuses = await guesses(u.email, 12, eachReplica);
      report('login limit across 2 replicas with Redis down (insurance: limit / REPLICAS each)', {
        statuses: statuses.join(' '),
      });
      expect(statuses.filter((x) => x >= 500)).toEqual([]);
      expect(statuses.filter((x) => x === 401).length).toBeLessThanOrEqual(5);
      expect(statuses.at(-1)).toBe(429);
    } finally {
      await redis.start();
    }
  });
});
