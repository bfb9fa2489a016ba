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
    app = await startTestApp({ TRUST_PROXY: 'true', TRUSTED_PROXY_HOPS: '1', LOGIN_MAX_FAILURES_PER_CLIENT: '3', LOGIN_MAX_FAILURES: '100' });
  });
  afterAll(() => app?.close());

  const wrongLogin = (forwardedFor: string) =>
    call(app.url, 'POST', '/api/v1/users/login', { body: { email: newUser().email, password: 'not-the-password' }, headers: { 'x-forwarded-for': forwardedFor } });

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
});
