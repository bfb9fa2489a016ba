import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN_ENV, api, createProduct, newUser } from '../../test/helpers/http.ts';
import { startSplitRig } from '../../test/helpers/split.ts';
import {
  TEST_REDIS_URL,
  dropQueueKeys,
  freePorts,
  redisAnswers,
  testQueuePrefix,
  waitFor,
} from '../../test/helpers/wait.ts';
import { startTracing, type Tracing } from './tracing.ts';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;
let catalogue: TestApp;
let shop: TestApp;
const http = api(() => shop.url);
const SERVICE_KEY = randomBytes(16).toString('hex');
const viaRedis = await redisAnswers();
const queuePrefix = testQueuePrefix();

beforeAll(async () => {
  tracing = startTracing({ serviceName: 'toko-test', version: 'test', exporter });
  // Two servers in this process, talking through the HTTP adapter: the product module on its own, and the rest.
  const [productPort] = await freePorts(1);
  shop = await startTestApp({
    MODULES: 'user,order,notification',
    ...TEST_ADMIN_ENV,
    PRODUCT_SERVICE_URL: `http://127.0.0.1:${productPort}`,
    SERVICE_KEY,
    ...(viaRedis ? { REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: queuePrefix } : {}),
  });
  catalogue = await startTestApp({
    MODULES: 'product',
    SERVICE_KEY,
    USER_SERVICE_URL: shop.url,
    PORT: String(productPort),
  });
}, 60_000);

afterAll(async () => {
  await shop?.close();
  await catalogue?.close();
  await tracing?.shutdown();
  if (viaRedis) await dropQueueKeys(queuePrefix);
});

const spans = () => exporter.getFinishedSpans();
const named = (trace: string, name: string) =>
  spans().filter((s) => s.spanContext().traceId === trace && s.name === name);

describe('tracing', () => {
  it(`follows one order across the HTTP adapter, the database and the ${viaRedis ? 'BullMQ' : 'in-process'} event bus in one trace`, async () => {
    // Added through the catalogue's public API, by the administrator the shop's user module vouches for.
    const productId = await createProduct(catalogue.url, { stock: 10, name: 'Kopi Gayo', price: 55_000 }, shop.url);
    const user = newUser();
    expect((await http.post('/api/v1/users/register', user)).status).toBe(201);
    const token = (
      await http.post<{ accessToken: string }>('/api/v1/users/login', { email: user.email, password: user.password })
    ).body.accessToken;
    exporter.reset();

    const placed = await http.post<{ id: string; status: string }>(
      '/api/v1/orders',
      { items: [{ productId, quantity: 2 }] },
      { token },
    );
    expect(placed.status).toBe(201);
    expect(placed.body.status).toBe('confirmed');

    const root = spans().find((s) => s.kind === SpanKind.SERVER && s.name === 'POST /api/v1/orders');
    expect(root, 'server span of the order request').toBeDefined();
    const trace = root!.spanContext().traceId;
    // The notification is sent by a consumer after the outbox relay published the event: wait for its span.
    await waitFor(
      'the order.confirmed handler span',
      async () => named(trace, 'handle order.confirmed')[0],
      15_000,
      50,
    );

    const client = named(trace, 'POST product.reserveStock');
    const remote = named(trace, 'POST /internal/v1/product/reserveStock');
    expect(client).toHaveLength(1);
    expect(remote).toHaveLength(1);
    // The product service continued the caller's span: same trace, and its parent is the client span.
    expect(remote[0]!.parentSpanContext?.spanId).toBe(client[0]!.spanContext().spanId);
    const queries = spans().filter(
      (s) => s.spanContext().traceId === trace && s.attributes['db.system.name'] === 'postgresql',
    );
    expect(queries.length).toBeGreaterThan(3);
    expect(named(trace, 'publish order.confirmed')).toHaveLength(1);
    const handled = named(trace, 'handle order.confirmed')[0]!;
    expect(handled.kind).toBe(SpanKind.CONSUMER);
    expect(handled.parentSpanContext?.spanId).toBe(named(trace, 'publish order.confirmed')[0]!.spanContext().spanId);

    // Every span in sight belongs to this one order: nothing else ran.
    const traces = new Set(spans().map((s: ReadableSpan) => s.spanContext().traceId));
    console.info(
      `one order: ${spans().filter((s) => s.spanContext().traceId === trace).length} spans in trace ${trace}, ${queries.length} of them queries, ${traces.size} trace(s) in all`,
    );
    // Log lines written while serving the order carry the trace id.
    expect(shop.logs.some((l) => l.traceId === trace && l.route === '/api/v1/orders' && l.module === 'order')).toBe(
      true,
    );
    expect(catalogue.logs.some((l) => l.traceId === trace && l.module === 'product')).toBe(true);
  }, 30_000);

  it('continues a trace the caller started (traceparent header)', async () => {
    const traceId = randomBytes(16).toString('hex');
    const res = await http.get('/health', {
      headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    expect(res.status).toBe(200);
    await waitFor('the health span', async () => spans().find((s) => s.spanContext().traceId === traceId), 5000);
  });
});

const canSplit = ['nginx', 'redis-server'].every((cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0);

describe.skipIf(!canSplit)('tracing in split mode', () => {
  it('makes one trace of an order placed through the gateway, across the order, product and notification services', async () => {
    // A stand-in OTLP/HTTP collector for the four services: every export is kept as it came (protobuf).
    const exports: Buffer[] = [];
    const collector = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (req.url === '/v1/traces') exports.push(Buffer.concat(chunks));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    collector.listen(0, '127.0.0.1');
    await once(collector, 'listening');
    const rig = await startSplitRig({
      ADMIN_EMAIL: 'admin@toko.test',
      ADMIN_PASSWORD: 'admin-password-1',
      BCRYPT_COST: '4',
      SEED_DEMO: 'false',
      LOG_LEVEL: 'warn',
      OUTBOX_POLL_MS: '200',
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(collector.address() as AddressInfo).port}`,
    });
    let traceId = '';
    try {
      const gw = api(() => rig.url);
      const admin = (
        await gw.post<{ accessToken: string }>('/api/v1/users/login', {
          email: 'admin@toko.test',
          password: 'admin-password-1',
        })
      ).body.accessToken;
      const product = (
        await gw.post<{ id: string }>(
          '/api/v1/products',
          { name: 'Kopi Toraja', price: 60_000, stock: 5, category: 'kopi' },
          { token: admin },
        )
      ).body;
      const user = newUser();
      await gw.post('/api/v1/users/register', user);
      const token = (
        await gw.post<{ accessToken: string }>('/api/v1/users/login', { email: user.email, password: user.password })
      ).body.accessToken;
      // The caller starts the trace; the gateway passes traceparent on.
      traceId = randomBytes(16).toString('hex');
      const placed = await gw.post<{ id: string }>(
        '/api/v1/orders',
        { items: [{ productId: product.id, quantity: 1 }] },
        {
          token,
          headers: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
        },
      );
      expect(placed.status).toBe(201);
      await waitFor(
        'the confirmation',
        async () => {
          const notes = (
            await gw.get<{ items: { template: string; status: string }[] }>('/api/v1/notifications', { token })
          ).body.items;
          return notes.some((n) => n.template === 'order-confirmed' && n.status === 'sent') ? true : undefined;
        },
        20_000,
        100,
      );
    } finally {
      // SIGTERM: each service flushes its spans on the way out.
      await rig.close();
      collector.close();
    }
    // The trace id as the exporter may encode it: hex (OTLP/JSON), base64, or raw bytes (protobuf).
    const raw = Buffer.from(traceId, 'hex');
    const carries = (b: Buffer) => b.includes(traceId) || b.includes(raw.toString('base64')) || b.includes(raw);
    const services = new Set<string>();
    for (const body of exports.filter(carries)) {
      for (const name of ['toko-user', 'toko-product', 'toko-order', 'toko-notification'])
        if (body.includes(name)) services.add(name);
    }
    console.info(`split trace: ${exports.length} exports, the order's trace found in ${[...services].join(', ')}`);
    expect([...services].sort()).toEqual(['toko-notification', 'toko-order', 'toko-product', 'toko-user']);
  }, 120_000);
});
