import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { TEST_ADMIN, TEST_ADMIN_ENV, api, createProduct, newUser } from '../../test/helpers/http.ts';
import { OrderOutOfStock } from '../../modules/order/order.errors.ts';
import { ProductNotFound } from '../../modules/product/contract.ts';
import { StockConflict } from '../../modules/product/product.errors.ts';
import { UserAlreadyExists } from '../../modules/user/user.errors.ts';
import { ValidationFailed, defineError, type ErrorClass } from '../../kit/errors.ts';
import type { AnyRouteDef } from '../../kit/route.ts';
import { ALL_MODULE_ROUTES } from '../registry.ts';
import { DOC_ROUTES } from './docs.ts';
import { healthRoutes } from './health.ts';
import { METRICS_ROUTE } from './metrics.ts';
import { buildOpenApiDocument, exampleOf, problemExample, problemSchemaOf, toOpenApiPath } from './openapi.ts';
import { QUEUES_ROUTE } from './queues-route.ts';
import { adminEventRoutes } from './admin-events.ts';

type Media = { schema: unknown; example?: unknown; examples?: Record<string, { value: Record<string, unknown> }> };
type Operation = {
  operationId?: string;
  security?: unknown[];
  parameters?: { name: string; example?: unknown; schema?: { example?: unknown } }[];
  responses: Record<string, { content?: Record<string, Media> }>;
};

const ROUTES: AnyRouteDef[] = [...healthRoutes, ...ALL_MODULE_ROUTES, ...adminEventRoutes('order')];
const doc = buildOpenApiDocument({
  routes: ROUTES,
  meta: [...DOC_ROUTES, METRICS_ROUTE, QUEUES_ROUTE],
  version: 'test',
}) as unknown as {
  paths: Record<string, Record<string, Operation>>;
};
const operation = (def: AnyRouteDef) => doc.paths[toOpenApiPath(def.path)]![def.method]!;

describe('request body examples', () => {
  it('are accepted by the very schema they illustrate', () => {
    const bodies = ALL_MODULE_ROUTES.filter((r) => r.body);
    expect(bodies.length).toBeGreaterThan(5);
    for (const r of bodies) {
      const example = (z.globalRegistry.get(r.body!) as { example?: unknown } | undefined)?.example;
      expect(example, `${r.method} ${r.path} has an example`).toBeDefined();
      const result = r.body!.safeParse(example);
      expect(result.success ? [] : result.error.issues, `${r.method} ${r.path}`).toEqual([]);
    }
  });
});

describe('the API document', () => {
  it('names every operation once, for client generators', () => {
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((op) => op.operationId));
    expect(
      ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id)),
      JSON.stringify(ids),
    ).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives every success answer an example its own response schema accepts', () => {
    for (const def of ROUTES.filter((r) => r.status !== 204)) {
      const media = operation(def).responses[String(def.status ?? 200)]!.content!['application/json']!;
      expect(media.example, `${def.method} ${def.path}`).toBeDefined();
      const result = def.response.safeParse(media.example);
      expect(result.success ? [] : result.error.issues, `${def.method} ${def.path}`).toEqual([]);
    }
  });

  it("gives every problem answer one example per code it can carry, each accepted by that code's schema, extension fields included", () => {
    let codes = 0;
    for (const def of ROUTES) {
      for (const [status, response] of Object.entries(operation(def).responses).filter(([s]) => Number(s) >= 400)) {
        const examples = response.content!['application/problem+json']!.examples!;
        expect(Object.keys(examples).length, `${def.method} ${def.path} ${status}`).toBeGreaterThan(0);
        for (const [code, { value }] of Object.entries(examples)) {
          expect(value, `${def.method} ${def.path} ${code}`).toMatchObject({
            code,
            status: Number(status),
            type: `urn:toko:problem:${code}`,
          });
          codes++;
        }
      }
      for (const e of def.problems ?? []) {
        const example = problemExample(e, def.path);
        const result = z.strictObject(problemSchemaOf(e).shape).safeParse(example);
        expect(result.success ? [] : result.error.issues, `${def.path} ${e.code}`).toEqual([]);
      }
    }
    expect(codes).toBeGreaterThan(50);
    // The 409 of POST /orders documents what each of its codes adds.
    const conflict = operation(ROUTES.find((r) => r.operationId === 'placeOrder')!).responses['409']!.content![
      'application/problem+json'
    ]!;
    expect(conflict.examples!['ORDER.OUT_OF_STOCK']!.value).toMatchObject({
      orderId: expect.any(String),
      items: [{ productId: expect.any(String), requested: 3, available: 1 }],
    });
  });

  it('pre-fills no query parameter (Swagger UI would send an example as a filter)', () => {
    const prefilled = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).flatMap(([m, op]) =>
        (op.parameters ?? [])
          .filter((x) => x.example !== undefined || x.schema?.example !== undefined)
          .map((x) => `${m} ${p} ${x.name}`),
      ),
    );
    expect(prefilled).toEqual([]);
  });

  it('declares how /admin/queues and /metrics are signed in to, and lists no docs asset as an operation', () => {
    expect(doc.paths['/admin/queues']!.get!.security).toEqual([{ basicAuth: [] }, { bearerAuth: [] }]);
    expect(doc.paths['/metrics']!.get!.security).toEqual([{}, { metricsToken: [] }]);
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/docs/'))).toEqual([]);
  });

  it('refuses an extension field that would be overwritten by a standard one', () => {
    const clash = defineError('TEST.CLASH', 409, 'Clash', z.object({ status: z.string() }));
    expect(() => problemSchemaOf(clash)).toThrow(/status clash/);
  });

  it('builds examples from the parts of a schema when the whole declares none', () => {
    const page = z.object({
      items: z.array(z.object({ id: z.string().meta({ example: 'p-1' }) })),
      total: z.number().meta({ example: 1 }),
      note: z.string().optional(),
    });
    expect(exampleOf(page)).toEqual({ items: [{ id: 'p-1' }], total: 1 });
    expect(exampleOf(z.object({ id: z.string() }))).toBeUndefined();
  });
});

describe('problem documents toko really sends', () => {
  let app: TestApp;
  const http = api(() => app.url);
  beforeAll(async () => {
    app = await startTestApp(TEST_ADMIN_ENV);
  }, 60_000);
  afterAll(() => app?.close());

  /** Parses a real problem with the documented schema of its code, unknown fields refused. */
  const documented = (error: ErrorClass, body: unknown) => {
    const result = z.strictObject(problemSchemaOf(error).shape).safeParse(body);
    return result.success ? [] : result.error.issues;
  };

  it('carry exactly the fields the document declares for their code', async () => {
    const admin = (await http.post<{ accessToken: string }>('/api/v1/users/login', TEST_ADMIN)).body.accessToken;
    const user = newUser();
    expect((await http.post('/api/v1/users/register', user)).status).toBe(201);
    const taken = await http.post('/api/v1/users/register', { ...newUser(), email: user.email });
    expect(taken.status).toBe(409);
    expect(documented(UserAlreadyExists, taken.body)).toEqual([]);

    const invalid = await http.post('/api/v1/users/register', { ...newUser(), email: 'not-an-address' });
    expect(invalid.status).toBe(422);
    expect(documented(ValidationFailed as unknown as ErrorClass, invalid.body)).toEqual([]);

    const productId = await createProduct(app.url, { stock: 1 });
    const below = await http.post(`/api/v1/products/${productId}/stock`, { delta: -5 }, { token: admin });
    expect(below.status).toBe(409);
    expect(documented(StockConflict, below.body)).toEqual([]);

    const missing = await http.get('/api/v1/products/64d3a00000000000000000ff');
    expect(missing.status).toBe(404);
    expect(documented(ProductNotFound, missing.body)).toEqual([]);

    const token = (
      await http.post<{ accessToken: string }>('/api/v1/users/login', { email: user.email, password: user.password })
    ).body.accessToken;
    const short = await http.post('/api/v1/orders', { items: [{ productId, quantity: 3 }] }, { token });
    expect(short.status).toBe(409);
    expect(documented(OrderOutOfStock, short.body)).toEqual([]);
  });
});
