import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { TEST_ADMIN, TEST_ADMIN_ENV, api, createProduct, registerCustomer } from './helpers/http.ts';
import {
  TEST_REDIS_URL,
  dropQueueKeys,
  freePortBlock,
  freePorts,
  redisAnswers,
  testQueuePrefix,
  waitFor,
} from './helpers/wait.ts';

/**
 * Adding a module takes its folder and one line in src/registry.ts. In a
 * temporary copy of the repository, a throwaway `payment` module (a contract,
 * a table, a migration, a setting, a route, a consumer of order.confirmed) is
 * added exactly so, `npm run generate` is run, and the copy is started as one
 * process and split: the module is served, routed by the gateway, documented,
 * and fed its events, with no other file touched.
 */
const ROOT = path.resolve(import.meta.dirname, '..');
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canSplit = has('nginx') && (await redisAnswers());
if (!canSplit) console.warn('new-module split case skipped: nginx and a Redis at TEST_REDIS_URL are needed');

let copy: string;
const ENTRY = "  payment: (await import('../modules/payment/index.ts')).paymentModule,";

beforeAll(() => {
  copy = mkdtempSync(path.join(tmpdir(), 'toko-new-module-'));
  for (const entry of [
    'kit',
    'src',
    'modules',
    'adapters',
    'scripts',
    'deploy',
    'client',
    'monitoring',
    'package.json',
    'tsconfig.json',
    'docker-compose.split.yml',
  ]) {
    cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
  // The module's folder...
  cpSync(path.join(ROOT, 'test', 'fixtures', 'payment'), path.join(copy, 'modules', 'payment'), { recursive: true });
  // ...and one line in the one list.
  const registry = path.join(copy, 'src', 'registry.ts');
  const text = readFileSync(registry, 'utf8');
  const last = "  notification: (await import('../modules/notification/index.ts')).notificationModule,\n";
  expect(text).toContain(last);
  writeFileSync(registry, text.replace(last, `${last}${ENTRY}\n`));
  const generate = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/generate.ts'], {
    cwd: copy,
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(generate.status, generate.stderr).toBe(0);
}, 90_000);
afterAll(() => rmSync(copy, { recursive: true, force: true }));

/** Starts `node --import tsx <entry>` in the copy; resolves once `ready` says so. */
async function start(entry: string, env: Record<string, string>, ready: (out: string) => boolean) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: copy,
    env: {
      PATH: process.env.PATH,
      ...TEST_ADMIN_ENV,
      BCRYPT_COST: '4',
      LOG_LEVEL: 'warn',
      REGISTER_MAX_PER_CLIENT: '1000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    `${entry} to start`,
    async () => (ready(out) ? true : child.exitCode !== null ? Promise.reject(new Error(out)) : undefined),
    120_000,
    200,
  );
  return {
    output: () => out,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** What a user of the new module sees: served, documented, ready, and fed the orders confirmed elsewhere. */
async function exercise(url: string) {
  const http = api(() => url);
  const doc = await http.get<{ paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } }>(
    '/openapi.json',
  );
  expect(Object.keys(doc.body.paths)).toContain('/api/v1/payments');
  expect(doc.body.components.schemas).toHaveProperty('Payment');

  const productId = await createProduct(url, { stock: 5, price: 25_000 });
  const customer = await registerCustomer(url);
  const token = (
    await http.post<{ accessToken: string }>('/api/v1/users/login', {
      email: customer.email,
      password: customer.password,
    })
  ).body.accessToken;
  const order = await http.post<{ id: string; total: number }>(
    '/api/v1/orders',
    { items: [{ productId, quantity: 2 }] },
    { token },
  );
  expect(order.status).toBe(201);

  const admin = (await http.post<{ accessToken: string }>('/api/v1/users/login', TEST_ADMIN)).body.accessToken;
  const payments = await waitFor(
    'the payment of the confirmed order',
    async () => {
      const res = await http.get<{ items: { orderId: string; amount: number; provider: string }[] }>(
        '/api/v1/payments',
        { token: admin },
      );
      expect(res.status).toBe(200);
      return res.body.items.find((p) => p.orderId === order.body.id);
    },
    20_000,
    100,
  );
  expect(payments).toEqual({ orderId: order.body.id, amount: 50_000, currency: 'IDR', provider: 'midtrans' });
  expect((await http.get('/api/v1/payments', { token })).status).toBe(403);
}

/** The module's requests are its own in /metrics (module label from its route definitions), not the kernel's. */
async function labelledAsPayment(metricsUrl: string) {
  const text = await (await fetch(metricsUrl)).text();
  expect(text).toMatch(
    /^http_request_duration_seconds_count\{[^}]*module="payment",method="GET",route="\/api\/v1\/payments",status="200"\} \d+$/m,
  );
  expect(text).not.toMatch(/module="kernel",method="GET",route="\/api\/v1\/payments"/);
}

describe('a module added with its folder and one line in the registry', () => {
  it('gets its gateway routes, compose service and scrape target from npm run generate', () => {
    const template = readFileSync(path.join(copy, 'deploy/nginx/toko.conf.template'), 'utf8');
    expect(template).toMatch(
      /upstream toko_payment \{ zone toko_payment \w+; server \$\{PAYMENT_UPSTREAM\}[^;]*; keepalive 64; keepalive_timeout 4s; \}/,
    );
    expect(template).toMatch(
      /location \/api\/v1\/payments \{ [^\n]*\/__toko_read\/payment last; \} proxy_pass http:\/\/toko_payment; \}/,
    );
    expect(template).toContain('location = /__toko_read/payment { internal; ');
    expect(readFileSync(path.join(copy, 'docker-compose.split.yml'), 'utf8')).toMatch(
      /\n {2}payment:\n[\s\S]*PAYMENT_DATABASE_URL: postgres:\/\/toko:toko@payment-db:5432\/payments/,
    );
    expect(readFileSync(path.join(copy, 'monitoring/prometheus/split.yml'), 'utf8')).toContain('"payment:9464"');
  });

  it('gets its Kubernetes Deployment, Service, Secret key and gateway routes from npm run generate', () => {
    const split = path.join(copy, 'deploy/k8s/overlays/split');
    const objects = parseAllDocuments(readFileSync(path.join(split, 'payment.yaml'), 'utf8')).map(
      (d) => d.toJS() as { kind: string; metadata: { name: string }; spec: Record<string, unknown> },
    );
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(
      expect.arrayContaining(['Deployment/toko-payment', 'Service/toko-payment']),
    );
    expect(JSON.stringify(objects.find((o) => o.kind === 'Deployment'))).toContain(
      '"secretKeyRef":{"name":"toko-secrets","key":"PAYMENT_DATABASE_URL"}',
    );
    expect(readFileSync(path.join(split, 'kustomization.yaml'), 'utf8')).toMatch(/\n {2}- payment\.yaml\n/);
    const gateway = readFileSync(path.join(split, 'gateway.conf'), 'utf8');
    expect(gateway).toMatch(
      /upstream toko_payment \{ zone toko_payment \w+; (?:server toko-payment:3000 max_fails=0; ){3}keepalive 64;/,
    );
    expect(gateway).toMatch(
      /location \/api\/v1\/payments \{ [^\n]*\/__toko_read\/payment last; \} proxy_pass http:\/\/toko_payment; \}/,
    );
    expect(gateway).toContain('proxy_pass http://toko_payment$request_uri; }');
  });

  it('gets its settings and its per-module variables in the configuration reference from npm run generate', () => {
    const reference = readFileSync(path.join(copy, 'docs/configuration.md'), 'utf8');
    expect(reference).toContain('## The payment module');
    expect(reference).toMatch(/\n\| `PAYMENT_PROVIDER` \| `manual` \|/);
    expect(reference).toMatch(/\n\| `PAYMENT_DATABASE_URL` \| `DATABASE_URL` \| .*payment module/);
    expect(reference).toMatch(/\n\| `PAYMENT_SERVICE_URL` \| — \| .*payment service/);
  });

  it('is served, documented, migrated, configured and fed its events in one process', async () => {
    const [port] = await freePorts(1);
    const app = await start(
      'src/main.ts',
      {
        PORT: String(port),
        HOST: '127.0.0.1',
        DATA_DIR: path.join(copy, 'data-single'),
        PAYMENT_PROVIDER: 'midtrans',
        LOG_LEVEL: 'info',
      },
      (out) => out.includes('"msg":"toko is listening"'),
    );
    try {
      const url = `http://127.0.0.1:${port}`;
      expect(
        ((await (await fetch(`${url}/health/ready`)).json()) as { checks: Record<string, string> }).checks,
      ).toMatchObject({ 'payment.database': 'ok' });
      await exercise(url);
      await labelledAsPayment(`${url}/metrics`);
    } finally {
      await app.stop();
    }
  }, 150_000);

  it.skipIf(!canSplit)(
    'runs as a service of its own behind the gateway, events over BullMQ',
    async () => {
      const [gateway] = await freePorts(1);
      const base = await freePortBlock(6);
      const prefix = testQueuePrefix();
      const split = await start(
        'src/split/main.ts',
        {
          GATEWAY_PORT: String(gateway),
          SPLIT_BASE_PORT: String(base),
          REDIS_URL: TEST_REDIS_URL,
          QUEUE_PREFIX: prefix,
          DATA_DIR: path.join(copy, 'data-split'),
          SEED_DEMO: 'false',
          PAYMENT_PROVIDER: 'midtrans',
        },
        (out) => out.includes('toko split: gateway'),
      );
      try {
        const payment = /toko split: payment\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(split.output());
        expect(payment).not.toBeNull();
        const url = `http://127.0.0.1:${gateway}`;
        const ready = await fetch(`${url}/health/ready`);
        expect(await ready.json()).toEqual({
          status: 'ok',
          modules: { user: 'ok', product: 'ok', order: 'ok', notification: 'ok', payment: 'ok' },
        });
        await exercise(url);
        // Scraped per service, as Prometheus does: the payment service's own /metrics.
        await labelledAsPayment(`${payment![1]}/metrics`);
      } finally {
        await split.stop();
        await dropQueueKeys(prefix);
      }
    },
    180_000,
  );
});
