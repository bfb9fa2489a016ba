import { networkInterfaces } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { call } from '../../test/helpers/http.ts';

/** An address of this machine that is not loopback: a request to it arrives from a non-loopback peer. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
if (!external) console.warn('metrics access from another machine not tested: no non-loopback IPv4 address here');

const TOKEN = 'a-metrics-token-for-tests';

describe('/metrics on the public port', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ HOST: '0.0.0.0', METRICS_TOKEN: TOKEN });
  });
  afterAll(() => app?.close());

  it('answers this machine', async () => {
    const res = await call(app.url, 'GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.text).toContain('http_request_duration_seconds');
  });

  it.skipIf(!external)('refuses another machine unless it presents METRICS_TOKEN', async () => {
    const base = `http://${external}:${app.server.port}`;
    const anonymous = await call(base, 'GET', '/metrics');
    expect(anonymous.status).toBe(403);
    expect(anonymous.text).not.toContain('http_request_duration_seconds');
    expect(
      (await call(base, 'GET', '/metrics', { headers: { authorization: 'Bearer not-the-token-at-all' } })).status,
    ).toBe(403);
    // Spoofing a local address in X-Forwarded-For changes nothing: the socket's address decides.
    expect((await call(base, 'GET', '/metrics', { headers: { 'x-forwarded-for': '127.0.0.1' } })).status).toBe(403);
    const allowed = await call(base, 'GET', '/metrics', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(allowed.status).toBe(200);
    expect(allowed.text).toContain('http_request_duration_seconds');
  });
});

describe('/metrics on its own port (METRICS_PORT)', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({ METRICS_PORT: '0', METRICS_HOST: '127.0.0.1' });
  });
  afterAll(() => app?.close());

  it('is served there and not on the public port at all', async () => {
    expect((await call(app.url, 'GET', '/metrics')).status).toBe(404);
    const url = app.server.metricsUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('toko_db_pool_connections');
    expect((await fetch(url.replace('/metrics', '/api/v1/users'))).status).toBe(404);
  });
});
