import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, newUser } from '../../test/helpers/http.ts';

let app: TestApp;
const http = api(() => app.url);

beforeAll(async () => {
  app = await startTestApp({
    // The test plays the gateway: it writes the client address the service believes.
    TRUSTED_PROXIES: '127.0.0.1',
    LOGIN_MAX_FAILURES: '2',
    LOGIN_MAX_FAILURES_PER_EMAIL: '6',
    LOGIN_MAX_FAILURES_PER_CLIENT: '1000',
  });
});
afterAll(() => app?.close());

const loginFrom = (address: string, email: string, password: string) =>
  http.send('POST', '/api/v1/users/login', { body: { email, password }, headers: { 'x-forwarded-for': address } });

describe('the owner keeps a way in (LOGIN_KNOWN_ADDRESS_DAYS)', () => {
  it('locks a guesser spread over many addresses out, and lets the owner in from the network they signed in from before', async () => {
    const owner = newUser();
    expect((await http.post('/api/v1/users/register', owner)).status).toBe(201);
    // Home: an IPv6 address; its /64 is what is remembered.
    expect((await loginFrom('2001:db8:7:7::10', owner.email, owner.password)).status).toBe(200);

    // Three addresses × two wrong passwords reach the e-mail's across-addresses limit of 6.
    for (const a of ['203.0.113.1', '203.0.113.2', '203.0.113.3'])
      for (let i = 0; i < 2; i++) expect((await loginFrom(a, owner.email, 'wrong-password')).status).toBe(401);
    expect((await loginFrom('203.0.113.4', owner.email, 'wrong-password')).status).toBe(429);
    // A fresh address waits, even with the right password: the limit holds for everyone not known to the account.
    expect((await loginFrom('198.51.100.9', owner.email, owner.password)).status).toBe(429);
    // Another address of the home /64 is let in.
    expect((await loginFrom('2001:db8:7:7::99', owner.email, owner.password)).status).toBe(200);
  });

  it('does not let a guesser rotate addresses inside one IPv6 /64 for more tries', async () => {
    const victim = newUser();
    expect((await http.post('/api/v1/users/register', victim)).status).toBe(201);
    expect((await loginFrom('2001:db8:9:9::1', victim.email, 'wrong-password')).status).toBe(401);
    expect((await loginFrom('2001:db8:9:9::2', victim.email, 'wrong-password')).status).toBe(401);
    expect((await loginFrom('2001:db8:9:9::3', victim.email, 'wrong-password')).status).toBe(429);
  });
});
