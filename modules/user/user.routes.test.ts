import { createHmac, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, newUser } from '../../test/helpers/http.ts';

const ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };

let app: TestApp;
const http = api(() => app.url);

async function register(overrides: Parameters<typeof newUser>[0] = {}) {
  const body = newUser(overrides);
  const res = await http.post('/api/v1/users/register', body);
  expect(res.status).toBe(201);
  return { ...body, id: res.body.id as string };
}

async function login(email: string, password: string): Promise<string> {
  const res = await http.post('/api/v1/users/login', { email, password });
  expect(res.status).toBe(200);
  return res.body.accessToken as string;
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

beforeAll(async () => {
  app = await startTestApp({
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    LOGIN_MAX_FAILURES: '3',
    LOGIN_MAX_FAILURES_PER_CLIENT: '1000',
    ACCOUNT_CHECK_TTL_MS: '30000',
  });
});
afterAll(() => app?.close());

describe('POST /api/v1/users/register', () => {
  it('creates a customer, stores the e-mail lower-cased and never returns a hash', async () => {
    const body = newUser();
    const res = await http.post('/api/v1/users/register', { ...body, email: body.email.toUpperCase() });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      email: body.email,
      username: body.username,
      fullName: body.fullName,
      role: 'customer',
      isActive: true,
      isVerified: false,
    });
    expect(Object.keys(res.body).sort()).toEqual([
      'createdAt',
      'email',
      'fullName',
      'id',
      'isActive',
      'isVerified',
      'role',
      'updatedAt',
      'username',
    ]);
    expect(res.text).not.toMatch(/\$2[aby]\$/);
  });

  it('answers 409 naming the field for a taken e-mail, whatever its case', async () => {
    const first = await register();
    const res = await http.post('/api/v1/users/register', newUser({ email: first.email.toUpperCase() }));
    expect(res.status).toBe(409);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({ code: 'USER.ALREADY_EXISTS', field: 'email', status: 409 });
  });

  it('answers 409 naming the field for a taken username', async () => {
    const first = await register();
    const res = await http.post('/api/v1/users/register', newUser({ username: first.username }));
    expect(res.status).toBe(409);
    expect(res.body).toMatchObject({ code: 'USER.ALREADY_EXISTS', field: 'username' });
  });

  it('lets exactly one of two racing registrations of the same e-mail win', async () => {
    const body = newUser();
    const results = await Promise.all([
      http.post('/api/v1/users/register', body),
      http.post('/api/v1/users/register', { ...body, username: `${body.username.slice(0, 28)}_2` }),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
  });

  it('answers 422 with one entry per bad field and stores nothing', async () => {
    const res = await http.post('/api/v1/users/register', {
      email: 'not-an-email',
      username: 'Ab',
      password: 'short',
      fullName: '',
      isAdmin: true,
    });
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('REQUEST.VALIDATION_FAILED');
    const paths = (res.body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['email', 'fullName', 'isAdmin', 'password', 'username']);
    const admin = await login(ADMIN.email, ADMIN.password);
    const list = await http.get('/api/v1/users?limit=100', { token: admin });
    expect((list.body.items as { email: string }[]).some((u) => u.email === 'not-an-email')).toBe(false);
  });

  it('refuses passwords longer than bcrypt reads', async () => {
    const res = await http.post('/api/v1/users/register', newUser({ password: 'é'.repeat(40) }));
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'password', message: 'Must be at most 72 bytes' }]);
  });

  it('refuses names that would put line breaks, bidi tricks or links into a mail to someone else, and keeps real names', async () => {
    const phishing = [
      'Budi\n\nYour account is suspended. Verify at https://evil.example/login',
      'Siti\u202Egnp.exe',
      'Ani www.hadiah-toko.example',
      'Rudi\u2028PS: reply with your PIN',
      // Bare domains (any top-level domain) and e-mail addresses read as the shop's own just as well.
      'Akun diblokir! Verifikasi di toko-verify.com segera',
      'Hadiah menanti: toko-hadiah.xyz',
      'Balas ke cs@toko-support.id',
    ];
    for (const fullName of phishing) {
      const res = await http.post('/api/v1/users/register', newUser({ fullName }));
      expect(res.status, JSON.stringify(fullName)).toBe(422);
      expect((res.body.errors as { path: string }[]).map((e) => e.path)).toEqual(['fullName']);
    }
    for (const fullName of [
      'Siti Nur’aini',
      'José da Silva-Putri',
      'I Gusti Ngurah Rai',
      '김민지',
      'Ir. H. Joko S.Kom',
    ]) {
      expect((await http.post('/api/v1/users/register', newUser({ fullName }))).status, fullName).toBe(201);
    }
  });

  it('refuses a username that is a domain', async () => {
    for (const username of ['toko-verify.com', 'cs.toko.id', 'hadiah.xyz']) {
      const res = await http.post('/api/v1/users/register', newUser({ username }));
      expect(res.status, username).toBe(422);
      expect(res.body.errors).toEqual([{ path: 'username', message: 'Must not be a web address or domain' }]);
    }
    expect(
      (await http.post('/api/v1/users/register', newUser({ username: `siti.rahma${Date.now() % 100000}` }))).status,
    ).toBe(201);
  });

  it('bounds a name before any pattern reads it: 100,000 letters are one 422 for its length', async () => {
    const res = await http.post('/api/v1/users/register', newUser({ fullName: 'a'.repeat(100_000) }));
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual([{ path: 'fullName', message: expect.stringMatching(/200/) }]);
  });

  it('does not let a longer password log in to an account whose password is its first 72 bytes', async () => {
    const u = newUser({ password: 'k'.repeat(72) });
    expect((await http.post('/api/v1/users/register', u)).status).toBe(201);
    expect((await http.post('/api/v1/users/login', { email: u.email, password: u.password })).status).toBe(200);
    const longer = await http.post('/api/v1/users/login', { email: u.email, password: `${u.password}-and-anything` });
    expect(longer.status).toBe(422);
    expect(longer.body.errors).toEqual([{ path: 'password', message: 'Must be at most 72 bytes' }]);
  });
});

describe('POST /api/v1/users/login', () => {
  it('returns a bearer token whose claims name the user', async () => {
    const u = await register();
    const res = await http.post('/api/v1/users/login', { email: u.email.toUpperCase(), password: u.password });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ tokenType: 'bearer', expiresIn: 3600 });
    const claims = jwt.decode(res.body.accessToken as string, { complete: true })!;
    expect(claims.header.alg).toBe('RS256');
    expect(claims.payload).toMatchObject({ sub: u.id, role: 'customer', iss: 'toko', aud: 'toko-api' });
  });

  it('gives the same 401 for an unknown e-mail and a wrong password', async () => {
    const u = await register();
    const wrong = await http.post('/api/v1/users/login', { email: u.email, password: 'not-the-password' });
    const unknown = await http.post('/api/v1/users/login', {
      email: `nobody-${u.email}`,
      password: 'not-the-password',
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const strip = (b: Record<string, unknown>) => ({ ...b, requestId: undefined });
    expect(strip(wrong.body)).toEqual(strip(unknown.body));
  });

  it('answers 429 with Retry-After once an e-mail has used up its failures, even with the right password', async () => {
    const u = await register();
    for (let i = 0; i < 3; i++) {
      expect((await http.post('/api/v1/users/login', { email: u.email, password: 'wrong-password' })).status).toBe(401);
    }
    const blocked = await http.post('/api/v1/users/login', { email: u.email, password: u.password });
    expect(blocked.status).toBe(429);
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(blocked.body.code).toBe('REQUEST.TOO_MANY');
    // Another account is not affected.
    const other = await register();
    expect((await http.post('/api/v1/users/login', { email: other.email, password: other.password })).status).toBe(200);
  });

  it('answers 422 for a body that is not a login', async () => {
    const res = await http.post('/api/v1/users/login', { email: 'x@y.co', password: '', remember: true });
    expect(res.status).toBe(422);
    expect((res.body.errors as { path: string }[]).map((e) => e.path).sort()).toEqual(['password', 'remember']);
  });
});

describe('tokens', () => {
  let user: Awaited<ReturnType<typeof register>>;
  let token: string;
  beforeAll(async () => {
    user = await register();
    token = await login(user.email, user.password);
  });

  it('GET /me answers 401 with a problem and WWW-Authenticate without a token', async () => {
    const res = await http.get('/api/v1/users/me');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.body.code).toBe('AUTH.UNAUTHORIZED');
  });

  it('GET /me returns the caller', async () => {
    const res = await http.get('/api/v1/users/me', { token });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: user.id, email: user.email });
  });

  it('refuses alg none, HS256 signed with the public key, a foreign key, an edited payload and an expired token', async () => {
    const [header, payload] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const publicPem = readFileSync(path.join(app.db.dataDir, 'keys', 'jwt-public.pem'), 'utf8');
    const privatePem = readFileSync(path.join(app.db.dataDir, 'keys', 'jwt-private.pem'), 'utf8');
    const hsInput = `${b64({ alg: 'HS256', typ: 'JWT' })}.${payload}`;
    const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const kid = (jwt.decode(token, { complete: true })!.header as { kid: string }).kid;
    const bad = {
      none: `${b64({ alg: 'none', typ: 'JWT' })}.${payload}.`,
      hs256: `${hsInput}.${createHmac('sha256', publicPem).update(hsInput).digest('base64url')}`,
      foreignKey: jwt.sign({ role: 'admin' }, foreign, {
        algorithm: 'RS256',
        keyid: kid,
        subject: user.id,
        issuer: 'toko',
        audience: 'toko-api',
      }),
      edited: `${header}.${b64({ ...claims, role: 'admin' })}.${token.split('.')[2]}`,
      expired: jwt.sign(
        { role: 'customer', iat: Math.floor(Date.now() / 1000) - 7200, exp: Math.floor(Date.now() / 1000) - 3600 },
        privatePem,
        {
          algorithm: 'RS256',
          subject: user.id,
          issuer: 'toko',
          audience: 'toko-api',
        },
      ),
      wrongAudience: jwt.sign({ role: 'customer' }, privatePem, {
        algorithm: 'RS256',
        subject: user.id,
        issuer: 'toko',
        audience: 'someone-else',
      }),
    };
    for (const [name, t] of Object.entries(bad)) {
      const res = await http.get('/api/v1/users/me', { token: t });
      expect({ name, status: res.status }).toEqual({ name, status: 401 });
    }
    const expired = await http.get('/api/v1/users/me', { token: bad.expired });
    expect(expired.body.detail).toMatch(/expired/);
  });

  it('POST /verify returns the claims and the user, and 401 for a bad token', async () => {
    const ok = await http.post('/api/v1/users/verify', undefined, { token });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ claims: { sub: user.id, role: 'customer' }, user: { id: user.id } });
    const bad = await http.post('/api/v1/users/verify', undefined, { token: token.slice(0, -4) + 'AAAA' });
    expect(bad.status).toBe(401);
  });

  it('publishes a JWKS whose key verifies issued tokens', async () => {
    const res = await http.get<{ keys: Record<string, string>[] }>('/.well-known/jwks.json');
    expect(res.status).toBe(200);
    const [key] = res.body.keys;
    expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(key).not.toHaveProperty('d');
    const { createPublicKey } = await import('node:crypto');
    const pub = createPublicKey({ key: key as never, format: 'jwk' });
    expect(() => jwt.verify(token, pub, { algorithms: ['RS256'] })).not.toThrow();
    expect(jwt.decode(token, { complete: true })!.header.kid).toBe(key!.kid);
  });
});

describe('GET /api/v1/users/:id and GET /api/v1/users', () => {
  it('shows yourself, hides everyone else as 404, and lets an admin see anyone', async () => {
    const a = await register();
    const b = await register();
    const ta = await login(a.email, a.password);
    const admin = await login(ADMIN.email, ADMIN.password);
    expect((await http.get(`/api/v1/users/${a.id}`, { token: ta })).status).toBe(200);
    const other = await http.get(`/api/v1/users/${b.id}`, { token: ta });
    const missing = await http.get('/api/v1/users/00000000-0000-4000-8000-000000000000', { token: ta });
    expect(other.status).toBe(404);
    expect(missing.status).toBe(404);
    expect(other.body.code).toBe(missing.body.code);
    expect((await http.get(`/api/v1/users/${b.id}`, { token: admin })).body).toMatchObject({ id: b.id });
    expect((await http.get('/api/v1/users/not-a-uuid', { token: admin })).status).toBe(404);
    expect((await http.get(`/api/v1/users/${a.id}`)).status).toBe(401);
  });

  it('lists users for admins only, paginated with a total', async () => {
    const u = await register();
    const customer = await login(u.email, u.password);
    const admin = await login(ADMIN.email, ADMIN.password);
    expect((await http.get('/api/v1/users', { token: customer })).status).toBe(403);
    const all = await http.get<{ items: { id: string }[]; total: number; skip: number; limit: number }>(
      '/api/v1/users?limit=100',
      { token: admin },
    );
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(all.body.items.length);
    const page = await http.get<{ items: { id: string }[]; total: number; skip: number; limit: number }>(
      '/api/v1/users?skip=1&limit=2',
      { token: admin },
    );
    expect(page.body).toMatchObject({ skip: 1, limit: 2, total: all.body.total });
    expect(page.body.items.map((i) => i.id)).toEqual(all.body.items.slice(1, 3).map((i) => i.id));
  });

  it('answers 422 for a limit over the cap, unknown parameters, operator keys and repeated keys', async () => {
    const admin = await login(ADMIN.email, ADMIN.password);
    for (const q of ['limit=101', 'limit=0', 'skip=-1', 'role=admin', 'skip[$ne]=1', 'limit=1&limit=2', 'limit=abc']) {
      const res = await http.get(`/api/v1/users?${q}`, { token: admin });
      expect({ q, status: res.status }).toEqual({ q, status: 422 });
    }
  });
});

describe('admin bootstrap', () => {
  it('is idempotent across restarts and follows a changed password', async () => {
    await app.restart();
    await app.restart({ ADMIN_PASSWORD: 'a-new-admin-password' });
    const res = await http.post('/api/v1/users/login', { email: ADMIN.email, password: ADMIN.password });
    expect(res.status).toBe(401);
    const admin = await login(ADMIN.email, 'a-new-admin-password');
    const list = await http.get<{ items: { email: string; role: string }[] }>('/api/v1/users?limit=100', {
      token: admin,
    });
    expect(list.body.items.filter((u) => u.email === ADMIN.email)).toEqual([
      expect.objectContaining({ role: 'admin' }),
    ]);
    await app.restart();
  });
});

describe('logs', () => {
  it('never contain passwords, hashes or tokens', async () => {
    const u = await register({ password: 'very-secret-pass-42' });
    const token = await login(u.email, 'very-secret-pass-42');
    await http.get('/api/v1/users/me', { token });
    const text = app.logText();
    expect(text).not.toContain('very-secret-pass-42');
    expect(text).not.toContain(token);
    expect(text).not.toMatch(/\$2[aby]\$\d\d\$/);
    expect(app.logs.some((l) => l.route === '/api/v1/users/me' && l.status === 200)).toBe(true);
  });

  it('name the request on lines the module writes, not only on the request line', async () => {
    await http.post('/api/v1/users/register', newUser(), { headers: { 'x-request-id': 'reg-trace-1' } });
    expect(app.logs).toContainEqual(
      expect.objectContaining({ msg: 'user registered', module: 'user', requestId: 'reg-trace-1' }),
    );
  });
});

describe('taking access back (PATCH /api/v1/users/:id)', () => {
  /** A change takes effect before the PATCH answers: the very next request sees it, though the account check trusts an account for 30 s here. */
  const atOnce = async (probe: () => Promise<{ status: number }>, status: number) => {
    expect((await probe()).status).toBe(status);
  };

  it('deactivates a user: their live tokens stop working at once and they cannot log in, until reactivated', async () => {
    const admin = await login(ADMIN.email, ADMIN.password);
    const u = await register();
    const token = await login(u.email, u.password);
    expect((await http.get('/api/v1/users/me', { token })).status).toBe(200);

    const off = await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { isActive: false }, token: admin });
    expect(off.status).toBe(200);
    expect(off.body).toMatchObject({ id: u.id, isActive: false });
    await atOnce(() => http.get('/api/v1/users/me', { token }), 401);
    expect((await http.post('/api/v1/users/login', { email: u.email, password: u.password })).status).toBe(401);

    expect((await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { isActive: true }, token: admin })).status).toBe(
      200,
    );
    await atOnce(() => http.get('/api/v1/users/me', { token }), 200);
  });

  it('demotes an admin: their admin rights end with their role at once, on tokens issued before', async () => {
    const admin = await login(ADMIN.email, ADMIN.password);
    const u = await register();
    expect(
      (await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { role: 'admin' }, token: admin })).body,
    ).toMatchObject({ role: 'admin' });
    const second = await login(u.email, u.password);
    expect((await http.get('/api/v1/users?limit=1', { token: second })).status).toBe(200);
    expect(
      (await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { role: 'customer' }, token: admin })).status,
    ).toBe(200);
    await atOnce(() => http.get('/api/v1/users?limit=1', { token: second }), 403);
  });

  it('is for admins only, never on one’s own account, and says what is wrong with the rest', async () => {
    const admin = await login(ADMIN.email, ADMIN.password);
    const me = (await http.get('/api/v1/users/me', { token: admin })).body.id as string;
    const u = await register();
    const customer = await login(u.email, u.password);
    expect(
      (await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { role: 'admin' }, token: customer })).status,
    ).toBe(403);
    expect((await http.send('PATCH', `/api/v1/users/${me}`, { body: { isActive: false }, token: admin })).status).toBe(
      422,
    );
    expect((await http.send('PATCH', `/api/v1/users/${u.id}`, { body: {}, token: admin })).status).toBe(422);
    expect((await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { role: 'owner' }, token: admin })).status).toBe(
      422,
    );
    expect(
      (await http.send('PATCH', `/api/v1/users/${u.id}`, { body: { passwordHash: 'x', isActive: true }, token: admin }))
        .status,
    ).toBe(422);
    expect(
      (
        await http.send('PATCH', '/api/v1/users/00000000-0000-4000-8000-000000000000', {
          body: { isActive: false },
          token: admin,
        })
      ).status,
    ).toBe(404);
  });
});
