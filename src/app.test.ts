import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlOrm, startTestApp, type TestApp } from '../test/helpers/app.ts';
import { api, call, loadsFromOutside, newUser } from '../test/helpers/http.ts';
import { Validator } from '@seriousme/openapi-schema-validator';
import { toOpenApiPath } from './http/openapi.ts';
import { MODULE_NAMES } from './registry.ts';

interface OpenApiDoc {
  paths: Record<
    string,
    Record<
      string,
      {
        summary?: string;
        tags?: string[];
        requestBody?: { content: Record<string, { schema: { $ref?: string; example?: unknown }; example?: unknown }> };
        responses: Record<string, { content?: Record<string, unknown> }>;
      }
    >
  >;
  components: { schemas: Record<string, { example?: unknown }>; securitySchemes: Record<string, unknown> };
}

let app: TestApp;
const http = api(() => app.url);

beforeAll(async () => {
  // No user cache: the broken-database case below must reach the database.
  app = await startTestApp({
    BODY_LIMIT: '2kb',
    CORS_ORIGINS: 'https://shop.example,http://localhost:5173',
    USER_CACHE_TTL_MS: '0',
  });
});
afterAll(() => app?.close());

describe('request ids', () => {
  it('makes one when none is given and echoes a given one into the response, the problem and the log', async () => {
    const made = await http.get('/health');
    expect(made.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const given = await http.get('/no/such/route', { headers: { 'x-request-id': 'trace-abc.123' } });
    expect(given.headers.get('x-request-id')).toBe('trace-abc.123');
    expect(given.body.requestId).toBe('trace-abc.123');
    expect(app.logs).toContainEqual(
      expect.objectContaining({ requestId: 'trace-abc.123', status: 404, method: 'GET', msg: 'request' }),
    );
  });

  it('replaces an id that is not safe to log', async () => {
    const res = await http.get('/health', { headers: { 'x-request-id': 'bad id\twith spaces' } });
    expect(res.headers.get('x-request-id')).not.toContain(' ');
  });
});

describe('request log', () => {
  it('writes one line per request with the route template, status and duration, never the query string', async () => {
    const id = `log-${Date.now()}`;
    await http.get('/api/v1/users/00000000-0000-4000-8000-000000000000?secret=shh', {
      headers: { 'x-request-id': id },
    });
    const lines = app.logs.filter((l) => l.requestId === id && l.msg === 'request');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      service: 'toko',
      module: 'user',
      method: 'GET',
      route: '/api/v1/users/:id',
      status: 401,
    });
    expect(typeof lines[0]!.ms).toBe('number');
    expect(app.logText()).not.toContain('shh');
  });
});

describe('problem documents', () => {
  it('answers an unknown route with a 404 problem', async () => {
    const res = await http.get('/api/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({
      type: 'urn:toko:problem:HTTP.NOT_FOUND',
      status: 404,
      code: 'HTTP.NOT_FOUND',
      instance: '/api/v1/nothing-here',
    });
  });

  it('answers a wrong method with 405 and Allow', async () => {
    const res = await http.send('DELETE', '/api/v1/users/register');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toContain('POST');
    expect(res.body.code).toBe('HTTP.METHOD_NOT_ALLOWED');
  });

  it('answers malformed JSON with 400, a body past the limit with 413 and a non-JSON body with 415', async () => {
    const malformed = await http.send('POST', '/api/v1/users/register', {
      raw: '{"email": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.body.code).toBe('REQUEST.MALFORMED_JSON');

    const big = await http.post('/api/v1/users/register', { ...newUser(), fullName: 'x'.repeat(4096) });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe('REQUEST.TOO_LARGE');

    const form = await http.send('POST', '/api/v1/users/register', {
      raw: 'email=a@b.co',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(form.status).toBe(415);
    expect(form.body.code).toBe('REQUEST.UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a JSON body that is not an object with 400 or 422, never 500', async () => {
    const statuses: Record<string, number> = {};
    for (const raw of ['[1,2]', '"text"', 'null', '42']) {
      statuses[raw] = (
        await http.send('POST', '/api/v1/users/register', { raw, headers: { 'content-type': 'application/json' } })
      ).status;
    }
    // Strict JSON parsing refuses scalars outright; an array parses and fails the schema.
    expect(statuses).toEqual({ '[1,2]': 422, '"text"': 400, null: 400, '42': 400 });
  });

  it('refuses NUL characters anywhere in the input with 422, before they reach the database', async () => {
    const res = await http.post('/api/v1/users/register', { ...newUser(), fullName: 'Budi\u0000Santoso' });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'fullName', message: 'Must not contain NUL characters' }]);
    const q = await http.get('/api/v1/products?category=kopi%00');
    expect(q.status).toBe(422);
    expect(q.body.errors).toEqual([{ path: 'category', message: 'Must not contain NUL characters' }]);
  });

  it('refuses lone UTF-16 surrogates anywhere in a JSON body with 422, and the log line carries neither SQL nor the e-mail', async () => {
    const u = newUser();
    const raw = JSON.stringify({ ...u, fullName: 'x' }).replace('"fullName":"x"', '"fullName":"\\ud800"');
    const res = await call(app.url, 'POST', '/api/v1/users/register', {
      raw,
      headers: { 'content-type': 'application/json', 'x-request-id': 'lone-surrogate' },
    });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'fullName', message: 'Must be valid Unicode text (no lone surrogates)' }]);
    const nested = await call(app.url, 'POST', '/api/v1/users/login', {
      raw: '{"email":"a@b.co","password":"\\udfff-pw"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(nested.status).toBe(422);
    const lines = app.logs.filter((l) => l.requestId === 'lone-surrogate');
    expect(lines.map((l) => l.status)).toEqual([422]);
    expect(JSON.stringify(lines)).not.toMatch(new RegExp(`insert|select|${u.email.replace('.', '\\.')}`, 'i'));
  });

  it('answers a deeply nested body (1,000 levels, under this app’s 2 kB limit) with a 4xx, not a crash', async () => {
    const res = await call(app.url, 'POST', '/api/v1/users/register', {
      raw: `${'['.repeat(1000)}${']'.repeat(1000)}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
  });

  it('refuses a body on a route that takes none', async () => {
    const u = newUser();
    await http.post('/api/v1/users/register', u);
    const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
      .accessToken as string;
    const res = await http.post('/api/v1/users/verify', { extra: true }, { token });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'body', message: 'This route takes no request body' }]);
  });
});

describe('security headers', () => {
  it('sends helmet’s headers on every answer — JSON, problem, page — with a CSP that lets JSON load nothing and the docs only this origin', async () => {
    const answers = {
      json: await http.get('/health'),
      problem: await http.get('/nowhere'),
      refused: await http.post('/api/v1/users/login', { email: 'x' }),
      docs: await call(app.url, 'GET', '/docs'),
      redoc: await call(app.url, 'GET', '/redoc'),
    };
    for (const [name, res] of Object.entries(answers)) {
      expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
      expect(res.headers.get('x-frame-options'), name).toBe('DENY');
      expect(res.headers.get('referrer-policy'), name).toBe('no-referrer');
      expect(res.headers.get('content-security-policy'), name).toContain("frame-ancestors 'none'");
    }
    expect(answers.json.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    expect(answers.problem.headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'");
    const page = answers.docs.headers.get('content-security-policy')!;
    expect(page).toContain("script-src 'self'");
    expect(page).not.toMatch(/script-src[^;]*unsafe/);
    expect(answers.redoc.headers.get('content-security-policy')).toBe(page);
  });
});

describe('CORS', () => {
  it('echoes an allowed origin with credentials and says nothing to others', async () => {
    const ok = await http.get('/health', { headers: { origin: 'https://shop.example' } });
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://shop.example');
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    const other = await http.get('/health', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a preflight from an allowed origin', async () => {
    const res = await http.send('OPTIONS', '/api/v1/users/login', {
      headers: {
        origin: 'http://localhost:5173',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type',
      },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-methods')).toContain('POST');
  });
});

describe('health, metrics and docs', () => {
  it('sends the bare address to the API docs, and names their addresses and /metrics when listening', async () => {
    const res = await fetch(`${app.url}/`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/docs');
    expect(app.logs.find((l) => l.msg === 'toko is listening')).toMatchObject({
      url: app.url,
      docs: `${app.url}/docs`,
      redoc: `${app.url}/redoc`,
      metrics: `${app.url}/metrics`,
    });
  });

  it('says it is alive and which modules it hosts', async () => {
    const res = await http.get('/health');
    expect(res.body).toEqual({ status: 'ok', modules: MODULE_NAMES });
    const ready = await http.get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({
      status: 'ok',
      checks: Object.fromEntries(MODULE_NAMES.map((m) => [`${m}.database`, 'ok'])),
      info: { eventBus: 'in-process', queuesDashboard: expect.stringMatching(/^off: BullMQ is not in use/) },
    });
  });

  it('exports default metrics and a request histogram labelled by route template, not raw path', async () => {
    await http.get('/api/v1/users/11111111-1111-4111-8111-111111111111');
    const res = await call(app.url, 'GET', '/metrics');
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.text).toContain('process_cpu_seconds_total');
    expect(res.text).toMatch(
      /http_request_duration_seconds_count\{[^}]*method="GET",route="\/api\/v1\/users\/:id",status="401"\}/,
    );
    expect(res.text).not.toContain('11111111-1111');
  });

  it('documents every mounted route in /openapi.json', async () => {
    const doc = (await http.get<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('/openapi.json'))
      .body;
    expect(doc.openapi).toBe('3.1.0');
    // The docs pages' static files are how the pages load, not an operation of the API.
    const assets = 'get /docs/assets/{file}';
    const mounted = app.server.router.mounted.map((r) => `${r.method.toLowerCase()} ${toOpenApiPath(r.path)}`);
    expect(mounted).toContain(assets);
    expect(mounted.length).toBeGreaterThan(10);
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m} ${p}`));
    expect(documented).toEqual(expect.arrayContaining(mounted.filter((r) => r !== assets)));
    expect(documented).not.toContain(assets);
  });

  it('describes bodies, auth and problems in the document', async () => {
    type Op = { security?: unknown[]; requestBody?: unknown; responses: Record<string, unknown> };
    const doc = (await http.get<{ paths: Record<string, Record<string, Op>> }>('/openapi.json')).body;
    const register = doc.paths['/api/v1/users/register']!.post!;
    expect(register.requestBody).toBeDefined();
    expect(Object.keys(register.responses)).toEqual(expect.arrayContaining(['201', '409', '422', '413', '415']));
    const list = doc.paths['/api/v1/users']!.get!;
    expect(list.security).toEqual([{ bearerAuth: [] }]);
    expect(Object.keys(list.responses)).toEqual(expect.arrayContaining(['401', '403']));
  });

  it('is a valid OpenAPI 3.1 document, with an example for every request body', async () => {
    const doc = (await http.get<OpenApiDoc>('/openapi.json')).body;
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc) as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
    const bodies = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => op.requestBody)
        .map(([m, op]) => ({ op: `${m} ${p}`, media: op.requestBody!.content['application/json']! })),
    );
    expect(bodies.length).toBeGreaterThan(5);
    const schemaOf = (media: { schema: { $ref?: string; example?: unknown } }) =>
      media.schema.$ref ? doc.components.schemas[media.schema.$ref.split('/').at(-1)!]! : media.schema;
    const withoutExample = bodies
      .filter((b) => b.media.example === undefined && schemaOf(b.media).example === undefined)
      .map((b) => b.op);
    expect(withoutExample).toEqual([]);
  });

  it('gives every operation a summary, a tag, its security and a problem response for each refusal it can give', async () => {
    const doc = (await http.get<OpenApiDoc>('/openapi.json')).body;
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const where = `${m} ${p}`;
        expect(op.summary, where).toBeTruthy();
        expect(op.tags?.length, where).toBeGreaterThan(0);
        for (const [status, r] of Object.entries(op.responses)) {
          if (Number(status) >= 400)
            expect(Object.keys(r.content ?? {}), `${where} ${status}`).toEqual(['application/problem+json']);
        }
      }
    }
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('serves Swagger UI and Redoc from local assets', async () => {
    for (const page of ['/docs', '/redoc']) {
      const res = await call(app.url, 'GET', page);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/html');
      expect(res.text).not.toMatch(/https?:\/\//);
      for (const [, src] of res.text.matchAll(/(?:src|href)="([^"]+)"/g)) {
        const asset = await fetch(app.url + src);
        expect({ src, status: asset.status }).toEqual({ src, status: 200 });
        // Nor does any asset fetch from elsewhere (Redoc's bundle shows a logo from a CDN unless told otherwise).
        expect(loadsFromOutside(await asset.text()), src).toEqual([]);
      }
    }
    expect((await http.get('/docs/assets/../../package.json')).status).toBe(404);
  });
});

describe('when a module database stops answering', () => {
  it('reports not ready naming the part, and hides the internals of a 500', async () => {
    const u = newUser();
    await http.post('/api/v1/users/register', u);
    const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
      .accessToken as string;
    await sqlOrm(app.server, 'user').close(true);

    const ready = await http.get('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ failing: ['user.database'], checks: { 'user.database': 'failing' } });

    const res = await http.get('/api/v1/users/me', { token, headers: { 'x-request-id': 'broken-db' } });
    expect(res.status).toBe(500);
    expect(res.body).toMatchObject({
      code: 'SERVER.INTERNAL',
      detail: 'Something went wrong on our side',
      requestId: 'broken-db',
    });
    expect(res.text).not.toMatch(/at .*\.ts|select|knex|pool/i);
    expect(app.logs).toContainEqual(
      expect.objectContaining({ requestId: 'broken-db', msg: 'unhandled error', level: 'error' }),
    );
  });
});
