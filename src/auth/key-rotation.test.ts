import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENV } from '../../test/helpers/app.ts';
import { call, newUser } from '../../test/helpers/http.ts';
import { dropQueueKeys, redisAnswers, TEST_REDIS_URL, testQueuePrefix, waitFor } from '../../test/helpers/wait.ts';
import { loadConfig } from '../config.ts';
import { startServer, type RunningServer } from '../server.ts';

/**
 * Replicas of the user service (as a Kubernetes Deployment runs them) share
 * one signing key from the environment, and a third service verifies their
 * tokens with the published JWKS. A key rotation goes in two rollouts:
 * announce the next key (published and accepted, not yet signing), then sign
 * with it and keep the previous one published until its tokens expire.
 */
const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dbName = `toko_keys_${randomBytes(6).toString('hex')}`;
const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-keys-'));
const prefix = testQueuePrefix();
const serviceKey = randomBytes(24).toString('hex');
const pair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
const first = pair();
const second = pair();

const admin = async (sql: string) => {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await c.connect();
    await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
};

let dbUrl = '';
const servers = new Map<string, RunningServer>();
// The third service is split off from the user service, so events go over BullMQ: it needs Redis.
const redisUp = await redisAnswers();
if (!redisUp) console.warn(`key rotation tests skipped: no Redis answers at ${TEST_REDIS_URL} (set TEST_REDIS_URL)`);
// The replicas share one database, so a server: away from CI a machine without one skips with a notice; under CI it fails.
const hasPostgres = await admin('select 1').then(
  () => true,
  () => false,
);
if (!hasPostgres && !process.env.CI)
  console.warn(`key rotation tests skipped: no PostgreSQL answers at ${ADMIN_URL} (set TEST_DATABASE_URL)`);
const run = redisUp && (hasPostgres || Boolean(process.env.CI));

/** Starts (or restarts, as a rollout replaces a pod) one instance under `name`. */
async function start(name: string, env: Record<string, string>) {
  await servers.get(name)?.close();
  const config = loadConfig({
    ...TEST_ENV,
    LOG_LEVEL: 'silent',
    DATA_DIR: path.join(dataDir, name),
    DATABASE_URL: dbUrl,
    REDIS_URL: TEST_REDIS_URL,
    QUEUE_PREFIX: prefix,
    SERVICE_KEY: serviceKey,
    ...env,
  });
  const server = await startServer(config, { logger: pino({ level: 'silent' }) });
  servers.set(name, server);
  return server;
}
const url = (name: string) => servers.get(name)!.url;

/**
 * The user service's stable address in front of its replicas, as a
 * Kubernetes Service is: each request goes to the next replica in turn,
 * whichever instance (port) that replica runs as right now.
 */
let userService: Server;
let turn = 0;
const userServiceUrl = () => `http://127.0.0.1:${(userService.address() as AddressInfo).port}`;
function startUserService() {
  userService = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const target = url(turn++ % 2 === 0 ? 'a' : 'b');
    const headers = Object.fromEntries(
      Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && k !== 'host' && k !== 'connection'),
    ) as Record<string, string>;
    const upstream = await fetch(`${target}${req.url}`, {
      method: req.method,
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  return new Promise<void>((r) => userService.listen(0, '127.0.0.1', r));
}

/** A user replica signing with `signing`, also publishing and accepting `extra`. */
const userReplica = (name: string, signing: ReturnType<typeof pair>, extra: string[] = []) =>
  start(name, {
    MODULES: 'user',
    JWT_PRIVATE_KEY: signing.privateKey,
    JWT_PUBLIC_KEY: signing.publicKey,
    ...(extra.length ? { JWT_EXTRA_PUBLIC_KEYS: extra.join('') } : {}),
    // The other modules live elsewhere; this test never calls them.
    PRODUCT_SERVICE_URL: 'http://127.0.0.1:9',
    ORDER_SERVICE_URL: 'http://127.0.0.1:9',
    NOTIFICATION_SERVICE_URL: 'http://127.0.0.1:9',
  });

const user = newUser();
const login = async (replica: string) => {
  const res = await call<{ accessToken: string }>(url(replica), 'POST', '/api/v1/users/login', {
    body: { email: user.email, password: user.password },
  });
  expect(res.status, `login on ${replica}`).toBe(200);
  return res.body.accessToken;
};
const kidOf = (token: string) => jwt.decode(token, { complete: true })!.header.kid;
const kidsPublishedBy = async (replica: string) =>
  (await call<{ keys: { kid: string }[] }>(url(replica), 'GET', '/.well-known/jwks.json')).body.keys.map((k) => k.kid);
/** Where each token is accepted: both user replicas (their own verifier) and the notification service (the JWKS). */
const acceptedBy = async (token: string) => ({
  a: (await call(url('a'), 'GET', '/api/v1/users/me', { token })).status,
  b: (await call(url('b'), 'GET', '/api/v1/users/me', { token })).status,
  notification: (await call(url('notification'), 'GET', '/api/v1/notifications', { token })).status,
});
const EVERYWHERE = { a: 200, b: 200, notification: 200 };

beforeAll(async () => {
  if (!run) return;
  await admin(`create database "${dbName}"`);
  const u = new URL(ADMIN_URL);
  u.pathname = `/${dbName}`;
  dbUrl = u.toString();
  await userReplica('a', first);
  await userReplica('b', first);
  await startUserService();
  await start('notification', { MODULES: 'notification', USER_SERVICE_URL: userServiceUrl() });
  expect((await call(url('a'), 'POST', '/api/v1/users/register', { body: user })).status).toBe(201);
});

afterAll(async () => {
  for (const s of servers.values()) await s.close();
  await new Promise((r) => userService?.close(r));
  if (run) {
    await admin(`drop database if exists "${dbName}" with (force)`);
    await dropQueueKeys(prefix);
  }
  rmSync(dataDir, { recursive: true, force: true });
});

describe.skipIf(!run)('user replicas sharing a signing key', () => {
  it('issue tokens that verify on each other and on another service', async () => {
    const [fromA, fromB] = [await login('a'), await login('b')];
    expect(kidOf(fromA)).toBe(kidOf(fromB));
    expect(await kidsPublishedBy('a')).toEqual(await kidsPublishedBy('b'));
    expect(await acceptedBy(fromA)).toEqual(EVERYWHERE);
    expect(await acceptedBy(fromB)).toEqual(EVERYWHERE);
  });

  it('rotate the key in two rollouts without refusing a token, and refuse the old key once it is retired', async () => {
    const beforeRotation = await login('b');

    // Rollout 1: the next key is announced, one replica at a time; the first key still signs.
    await userReplica('a', first, [second.publicKey]);
    await userReplica('b', first, [second.publicKey]);
    const announced = await kidsPublishedBy('a');
    expect(announced).toHaveLength(2);
    expect(await kidsPublishedBy('b')).toEqual(announced);
    const stillFirst = await login('a');
    expect(kidOf(stillFirst)).toBe(kidOf(beforeRotation));

    // Rollout 2: the next key signs, the first stays published; replica a has rolled, b not yet.
    await userReplica('a', second, [first.publicKey]);
    const fromNew = await login('a');
    const fromOld = await login('b');
    expect(kidOf(fromNew)).not.toBe(kidOf(fromOld));
    expect(new Set(await kidsPublishedBy('a'))).toEqual(new Set(announced));
    // b (not rolled yet) accepts the new key it was told about; the notification service fetches the keys
    // again for a kid it has not seen, at most every 10 s, so it may take that long.
    expect((await acceptedBy(fromNew)).b).toBe(200);
    await waitFor(
      'the notification service to accept the new key',
      async () => ((await acceptedBy(fromNew)).notification === 200 ? true : undefined),
      15_000,
      250,
    );
    await userReplica('b', second, [first.publicKey]);
    for (const token of [beforeRotation, stillFirst, fromOld, fromNew, await login('b')])
      expect(await acceptedBy(token)).toEqual(EVERYWHERE);

    // Once the first key's tokens have expired it is dropped: a token it signs is refused.
    await userReplica('a', second);
    expect(await kidsPublishedBy('a')).toEqual([kidOf(fromNew)]);
    expect((await acceptedBy(await login('b'))).a).toBe(200);
    expect((await acceptedBy(fromOld)).a).toBe(401);
  });
});
