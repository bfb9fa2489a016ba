import { spawn } from 'node:child_process';
import { generateKeyPairSync, scrypt } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import jwt from 'jsonwebtoken';
import { afterAll, describe, expect, it } from 'vitest';
import { Unauthorized } from '../../kit/errors.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { startServer } from '../server.ts';
import { generateSigningKeys, loadSigningKeys } from './keys.ts';
import { createTokenIssuer, createTokenVerifier } from './tokens.ts';

const pair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
const current = pair();
const previous = pair();
const next = pair();
const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-keys-unit-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

const jwtOpts = { issuer: 'toko', audience: 'toko-api' };
const sign = (privateKey: string, kid: string | undefined) =>
  jwt.sign({ role: 'customer' }, privateKey, {
    algorithm: 'RS256',
    ...(kid ? { keyid: kid } : {}),
    subject: 'u1',
    ...jwtOpts,
    expiresIn: 60,
  });

describe('signing keys from the environment', () => {
  it('derive the same kid from the same key on every replica', () => {
    const a = loadSigningKeys({ privateKey: current.privateKey, publicKey: current.publicKey, dataDir });
    const b = loadSigningKeys({ privateKey: current.privateKey, publicKey: current.publicKey, dataDir });
    expect(a.kid).toBe(b.kid);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('publish the signing key first, then each extra key once', () => {
    const keys = loadSigningKeys({
      privateKey: current.privateKey,
      publicKey: current.publicKey,
      extraPublicKeys: [previous.publicKey, current.publicKey, next.publicKey, previous.publicKey],
      dataDir,
    });
    const issuer = createTokenIssuer({ keys, ...jwtOpts, ttlSeconds: 60 });
    const published = issuer.jwks().keys;
    expect(published.map((k) => k.kid)).toEqual(keys.verification.map((k) => k.kid));
    expect(published).toHaveLength(3);
    expect(published[0]!.kid).toBe(keys.kid);
    for (const k of published) {
      expect(k).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      expect(k).not.toHaveProperty('d');
    }
  });

  it('refuse a public key that does not match the private key, and an extra key that is not an RSA public key', () => {
    expect(() => loadSigningKeys({ privateKey: current.privateKey, publicKey: previous.publicKey, dataDir })).toThrow(
      /JWT_PUBLIC_KEY does not match JWT_PRIVATE_KEY/,
    );
    const ec = generateKeyPairSync('ec', {
      namedCurve: 'P-256',
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    expect(() => loadSigningKeys({ ...current, extraPublicKeys: [ec.publicKey], dataDir })).toThrow(
      /RSA.*JWT_EXTRA_PUBLIC_KEYS/,
    );
  });
});

describe('the local verifier during a rotation', () => {
  const keys = loadSigningKeys({ ...current, extraPublicKeys: [previous.publicKey], dataDir });
  const previousKid = keys.verification[1]!.kid;

  it('accepts tokens signed with the signing key and with an extra key, each by its kid', async () => {
    const verify = createTokenVerifier({ keys, ...jwtOpts });
    expect((await verify(sign(current.privateKey, keys.kid))).sub).toBe('u1');
    expect((await verify(sign(previous.privateKey, previousKid))).sub).toBe('u1');
    // Tokens from before kids were checked carry none: the signing key decides.
    expect((await verify(sign(current.privateKey, undefined))).sub).toBe('u1');
  });

  it('refuses a key it does not publish, under an unknown kid, a known kid or none', async () => {
    const verify = createTokenVerifier({ keys, ...jwtOpts });
    for (const token of [
      sign(next.privateKey, 'some-other-kid'),
      sign(next.privateKey, previousKid),
      sign(next.privateKey, keys.kid),
      sign(previous.privateKey, undefined),
      sign(previous.privateKey, keys.kid),
    ])
      await expect(verify(token)).rejects.toBeInstanceOf(Unauthorized);
  });
});

describe('JWT_EXTRA_PUBLIC_KEYS', () => {
  it('reads several PEM public keys, also written on one line with \\n as an environment file holds them', () => {
    const oneLine = (pem: string) => pem.replace(/\n/g, '\\n');
    const c = loadConfig({ JWT_EXTRA_PUBLIC_KEYS: `${oneLine(previous.publicKey)}${oneLine(next.publicKey)}` });
    expect(c.jwt.extraPublicKeys).toEqual([previous.publicKey, next.publicKey]);
    expect(loadConfig({}).jwt.extraPublicKeys).toEqual([]);
  });

  it('refuses anything but PEM public keys with a message naming the variable', () => {
    for (const bad of ['not a key', current.privateKey, `${previous.publicKey}garbage`])
      expect(() => loadConfig({ JWT_EXTRA_PUBLIC_KEYS: bad })).toThrow(
        /JWT_EXTRA_PUBLIC_KEYS: expected one or more PEM public keys/,
      );
  });
});

describe('a key pair generated under DATA_DIR', () => {
  it('is one pair for every replica sharing the directory, even when they all start at once', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-shared-'));
    try {
      // Half start as a first start does (the pair generated on the thread pool, then the keys read), half as a
      // test or a tool does (read, generating on the main thread): the first private key to land is everyone's.
      const opts = JSON.stringify({ dataDir: dir });
      const loads = [
        `import { loadSigningKeys } from './src/auth/keys.ts'; console.log(loadSigningKeys(${opts}).kid);`,
        `import { generateSigningKeys, loadSigningKeys } from './src/auth/keys.ts'; await generateSigningKeys(${opts}); console.log(loadSigningKeys(${opts}).kid);`,
      ];
      const kids = await Promise.all(
        Array.from(
          { length: 4 },
          (_, i) =>
            new Promise<string>((resolve, reject) => {
              const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', loads[i % 2]!], {
                cwd: path.resolve(import.meta.dirname, '..', '..'),
              });
              let out = '';
              child.stdout.on('data', (d: Buffer) => (out += d.toString()));
              child.on('error', reject);
              child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))));
            }),
        ),
      );
      expect(new Set(kids).size).toBe(1);
      expect(loadSigningKeys({ dataDir: dir }).kid).toBe(kids[0]);
      // Nothing written aside is left behind.
      expect(readdirSync(path.join(dir, 'keys')).sort()).toEqual(['jwt-private.pem', 'jwt-public.pem']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('is generated on a first start without holding up the main thread, once, and not at all when keys are configured', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-pool-'));
    try {
      // A 1 ms timer ticks all along: on the main thread, RSA generation (tens of ms at least) would be one long gap.
      const ticks: number[] = [];
      const timer = setInterval(() => ticks.push(performance.now()), 1);
      const started = performance.now();
      await generateSigningKeys({ dataDir: dir });
      const took = performance.now() - started;
      clearInterval(timer);
      const gaps = ticks.map((t, i) => t - (ticks[i - 1] ?? started));
      expect(ticks.length).toBeGreaterThan(2);
      expect(Math.max(...gaps)).toBeLessThan(0.9 * took);
      // What was generated is what is kept: read back, not generated again on the main thread.
      expect(existsSync(path.join(dir, 'keys', 'jwt-private.pem'))).toBe(true);
      const kept = loadSigningKeys({ dataDir: dir }).kid;
      // Kept already: nothing generated, it resolves before the next turn of the event loop.
      let resolved = false;
      const again = generateSigningKeys({ dataDir: dir }).then(() => (resolved = true));
      await new Promise((resolve) => setImmediate(resolve));
      expect(resolved).toBe(true);
      await again;
      expect(loadSigningKeys({ dataDir: dir }).kid).toBe(kept);
      const configured = path.join(dir, 'configured');
      await generateSigningKeys({ privateKey: current.privateKey, publicKey: current.publicKey, dataDir: configured });
      expect(existsSync(configured)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('gets its public half back from the private one when that file is missing', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-half-'));
    try {
      const first = loadSigningKeys({ dataDir: dir });
      rmSync(path.join(dir, 'keys', 'jwt-public.pem'));
      const again = loadSigningKeys({ dataDir: dir });
      expect(again.kid).toBe(first.kid);
      expect(existsSync(path.join(dir, 'keys', 'jwt-public.pem'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('starts again when only the public key was left in the directory (a new pair, the public half rewritten)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-stale-'));
    try {
      const first = loadSigningKeys({ dataDir: dir });
      rmSync(path.join(dir, 'keys', 'jwt-private.pem'));
      const second = loadSigningKeys({ dataDir: dir });
      expect(second.kid).not.toBe(first.kid);
      expect(loadSigningKeys({ dataDir: dir }).kid).toBe(second.kid);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("a first start's key pair in startServer", () => {
  // A database that refuses at once: the start fails while the pair is being generated.
  const failingStart = (dir: string, env: NodeJS.ProcessEnv = {}, logger = createLogger({ level: 'silent' })) =>
    startServer(loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', PORT: '0', ...env }), {
      logger,
    });

  it('is complete on disk when a start that failed meanwhile returns: nothing is written after it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-failed-start-'));
    // The thread pool's 4 threads kept busy first, so that the generation, queued behind them, is still to run
    // when the database refuses, however fast this machine generates RSA keys.
    const busy = Array.from(
      { length: 4 },
      () =>
        new Promise<void>((resolve, reject) =>
          scrypt('busy', 'salt', 32, { N: 2 ** 16, r: 8, p: 1, maxmem: 2 ** 27 }, (err) =>
            err ? reject(err) : resolve(),
          ),
        ),
    );
    try {
      await expect(failingStart(dir)).rejects.toThrow(/ECONNREFUSED|connect/);
      expect(readdirSync(path.join(dir, 'keys')).sort()).toEqual(['jwt-private.pem', 'jwt-public.pem']);
    } finally {
      await Promise.all(busy);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('logs a generation that failed when the start failed for another reason first', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-failed-both-'));
    const lines: string[] = [];
    // toko's own logger (its redaction, its level labels), writing to memory.
    const logger = createLogger({
      level: 'error',
      destination: new Writable({ write: (chunk: Buffer, _, done) => (lines.push(chunk.toString()), done()) }),
    });
    try {
      const start = failingStart(dir, {}, logger);
      // The directory is made before the generation is handed over; a file in its place makes keeping the pair fail.
      rmSync(path.join(dir, 'keys'), { recursive: true });
      writeFileSync(path.join(dir, 'keys'), 'not a directory');
      await expect(start).rejects.toThrow(/ECONNREFUSED|connect/);
      const logged = lines.map((l) => JSON.parse(l) as { msg: string; err?: { message: string } });
      expect(logged).toContainEqual(
        expect.objectContaining({
          level: 'error',
          msg: 'generating the JWT key pair failed',
          err: expect.objectContaining({ message: expect.stringMatching(/EEXIST/) }),
        }),
      );
      expect(lines.join('')).not.toContain('PRIVATE KEY');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails the start before the database when the key directory cannot be made or an extra public key is wrong', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-keys-no-dir-'));
    try {
      writeFileSync(path.join(dir, 'keys'), 'a file where the key directory goes');
      await expect(failingStart(dir)).rejects.toThrow(/EEXIST.*keys/);
      rmSync(path.join(dir, 'keys'));
      const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' });
      await expect(failingStart(dir, { JWT_EXTRA_PUBLIC_KEYS: ec.toString() })).rejects.toThrow(
        /JWT_EXTRA_PUBLIC_KEYS holds a EC key/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
