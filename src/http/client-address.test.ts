import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { call, newUser } from '../../test/helpers/http.ts';

/**
 * Behind one proxy (TRUST_PROXY, TRUSTED_PROXY_HOPS=1) the client address is
 * the one that proxy appended, the rightmost entry of X-Forwarded-For:
 * whatever a client writes to its left is its own invention.
 */
describe('the client address behind a proxy', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp({
      TRUST_PROXY: 'true',
      TRUSTED_PROXY_HOPS: '1',
      LOGIN_MAX_FAILURES_PER_CLIENT: '3',
      LOGIN_MAX_FAILURES: '100',
      REGISTER_MAX_CONFLICTS_PER_CLIENT: '3',
      REGISTER_MAX_PER_CLIENT: '10',
    });
  });
  afterAll(() => app?.close());

  const wrongLogin = (forwardedFor: string) =>
    call(app.url, 'POST', '/api/v1/users/login', {
      body: { email: newUser().email, password: 'not-the-password' },
      headers: { 'x-forwarded-for': forwardedFor },
    });

  it('cannot be dodged by inventing a new address at each guess', async () => {
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await wrongLogin(`203.0.113.${i}, 198.51.100.7`)).status);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
  });

  it('cannot lock out a victim by writing their address', async () => {
    for (let i = 0; i < 4; i++) await wrongLogin('192.0.2.50, 198.51.100.8');
    // The victim's own requests arrive through the proxy as 192.0.2.50 and are not throttled.
    expect((await wrongLogin('192.0.2.50')).status).toBe(401);
  });

  it('throttles finding out who has an account through registration, per address, never counting sign-ups that succeed', async () => {
    const register = (body: object, address: string) =>
      call(app.url, 'POST', '/api/v1/users/register', { body, headers: { 'x-forwarded-for': address } });
    const taken = newUser();
    expect((await register(taken, '198.51.100.20')).status).toBe(201);
    for (let i = 0; i < 5; i++) expect((await register(newUser(), '198.51.100.21')).status).toBe(201);
    const probes = [];
    for (let i = 0; i < 5; i++)
      probes.push((await register({ ...newUser(), email: taken.email }, '198.51.100.21')).status);
    expect(probes).toEqual([409, 409, 409, 429, 429]);
    expect((await register({ ...newUser(), email: taken.email }, '198.51.100.22')).status).toBe(409);
  });

  it('takes at most REGISTER_MAX_PER_CLIENT sign-ups from one address, even all at once, and leaves other addresses alone', async () => {
    const register = (address: string) =>
      call(app.url, 'POST', '/api/v1/users/register', { body: newUser(), headers: { 'x-forwarded-for': address } });
    const burst = await Promise.all(Array.from({ length: 14 }, () => register('198.51.100.30')));
    const statuses = burst.map((r) => r.status).sort();
    expect(statuses).toEqual([...Array(10).fill(201), ...Array(4).fill(429)]);
    expect(Number(burst.find((r) => r.status === 429)!.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await register('198.51.100.31')).status).toBe(201);
  });
});
