import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import jwt from 'jsonwebtoken';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Unauthorized } from '../../kit/errors.ts';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { newUser } from '../../test/helpers/http.ts';
import { createRemoteVerifier } from './remote-jwks.ts';

let app: TestApp;
let counter: Server;
let fetches = 0;
let jwksUrl = '';

beforeAll(async () => {
  app = await startTestApp({ MODULES: 'user' });
  // Counts how often the verifier goes to the user service for keys.
  counter = createServer(async (req, res) => {
    fetches++;
    const upstream = await fetch(`${app.url}${req.url}`);
    res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(await upstream.text());
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', r));
  jwksUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}/.well-known/jwks.json`;
});
afterAll(async () => {
  await new Promise<void>((r) => counter.close(() => r()));
  await app?.close();
});

describe('verifying tokens with the user service’s published keys', () => {
  it('fetches the keys once, verifies locally after that, and refreshes only for an unknown kid', async () => {
    const verify = createRemoteVerifier({
      jwksUrl,
      issuer: 'toko',
      audience: 'toko-api',
      logger: pino({ level: 'silent' }),
      minRefreshMs: 0,
    });
    const u = newUser();
    await fetch(`${app.url}/api/v1/users/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(u),
    });
    const login = (await (
      await fetch(`${app.url}/api/v1/users/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: u.email, password: u.password }),
      })
    ).json()) as { accessToken: string };

    for (let i = 0; i < 5; i++) expect((await verify(login.accessToken)).role).toBe('customer');
    expect(fetches).toBe(1);

    const stranger = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const forged = jwt.sign({ role: 'admin' }, stranger, {
      algorithm: 'RS256',
      keyid: 'unknown-kid',
      subject: 'x',
      issuer: 'toko',
      audience: 'toko-api',
    });
    await expect(verify(forged)).rejects.toBeInstanceOf(Unauthorized);
    expect(fetches).toBe(2);
    await expect(verify('not.a.token')).rejects.toBeInstanceOf(Unauthorized);
    expect(fetches).toBe(2);
  });
});
