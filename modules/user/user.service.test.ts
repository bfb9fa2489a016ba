import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { PasswordHasher } from '../../kit/auth.ts';
import { TooManyRequests } from '../../kit/errors.ts';
import { sqlDatabase, sqlOrm, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { newUser } from '../../test/helpers/http.ts';
import { createEventRecorder } from '../../test/helpers/kernel.ts';
import { userContract } from './contract.ts';
import { LoginGuard, addressKey } from './login-guard.ts';
import { InvalidCredentials } from './user.errors.ts';
import { UserService } from './user.service.ts';

/** A hasher that records every comparison, to see the work login does. */
function countingHasher(): PasswordHasher & { verified: string[] } {
  const verified: string[] = [];
  return {
    verified,
    dummy: 'hash:nobody-has-this',
    hash: async (p) => `hash:${p}`,
    verify: async (p, h) => {
      verified.push(h);
      return h === `hash:${p}`;
    },
  };
}

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(() => app?.close());

function service(passwords: PasswordHasher) {
  return new UserService({
    ...sqlDatabase(app.server, 'user'),
    passwords,
    tokens: { issue: () => ({ accessToken: 't', expiresIn: 1 }), jwks: () => ({ keys: [] }) },
    guard: new LoginGuard({
      maxFailuresPerEmail: 100,
      maxFailuresPerClient: 100,
      maxFailuresPerEmailAnywhere: 100,
      windowSeconds: 60,
    }),
    events: createEventRecorder({
      module: 'user',
      schema: 'users',
      events: userContract.events,
      wake: () => undefined,
    }),
    logger: pino({ level: 'silent' }),
  });
}

describe('UserService.login', () => {
  it('does one password comparison whether or not the e-mail exists', async () => {
    const passwords = countingHasher();
    const users = service(passwords);
    const u = newUser();
    await users.register(u);
    await expect(users.login({ email: u.email, password: 'wrong-password' }, 'c1')).rejects.toBeInstanceOf(
      InvalidCredentials,
    );
    await expect(users.login({ email: `nobody-${u.email}`, password: 'wrong-password' }, 'c1')).rejects.toBeInstanceOf(
      InvalidCredentials,
    );
    expect(passwords.verified).toHaveLength(2);
    expect(passwords.verified[0]).toBe(`hash:${u.password}`);
    // The unknown e-mail was compared against the dummy hash, not skipped.
    expect(passwords.verified[1]).toMatch(/^hash:/);
    expect(passwords.verified[1]).not.toBe(passwords.verified[0]);
  });

  it('refuses a disabled account with the same error as a wrong password', async () => {
    const users = service(countingHasher());
    const u = newUser();
    const created = await users.register(u);
    await sqlOrm(app.server, 'user')
      .em.fork()
      .getConnection()
      .execute('update users.users set is_active = false where id = ?', [created.id]);
    await expect(users.login({ email: u.email, password: u.password }, 'c2')).rejects.toBeInstanceOf(
      InvalidCredentials,
    );
  });
});

describe('LoginGuard', () => {
  const limits = {
    maxFailuresPerEmail: 2,
    maxFailuresPerClient: 10,
    maxFailuresPerEmailAnywhere: 100,
    windowSeconds: 60,
  };
  /** One wrong password: the try is reserved and never given back. */
  const fail = async (guard: LoginGuard, email: string, client: string) => {
    await guard.attempt(email, client);
  };

  it('blocks an e-mail at the address that failed, leaves other e-mails alone, and clears on success', async () => {
    const guard = new LoginGuard(limits);
    await fail(guard, 'a@x.co', 'c');
    await fail(guard, 'a@x.co', 'c');
    await expect(guard.attempt('a@x.co', 'c')).rejects.toBeInstanceOf(TooManyRequests);
    await expect(guard.attempt('b@x.co', 'c')).resolves.toBeUndefined();
    await guard.succeeded('a@x.co', 'c');
    await expect(guard.attempt('a@x.co', 'c')).resolves.toBeUndefined();
  });

  it('lets the owner log in from another address while a guesser is locked out (nobody can lock anyone out)', async () => {
    const guard = new LoginGuard(limits);
    for (let i = 0; i < 2; i++) await fail(guard, 'admin@x.co', 'attacker');
    await expect(guard.attempt('admin@x.co', 'attacker')).rejects.toBeInstanceOf(TooManyRequests);
    await expect(guard.attempt('admin@x.co', 'owner')).resolves.toBeUndefined();
  });

  it('still slows guessing one e-mail from many addresses, with a limit across all of them', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmailAnywhere: 6 });
    for (let i = 0; i < 6; i++) await fail(guard, 'spread@x.co', `10.0.0.${i}`);
    await expect(guard.attempt('spread@x.co', '10.0.9.9')).rejects.toBeInstanceOf(TooManyRequests);
  });

  it('counts tries as they start, so a concurrent burst on one e-mail from one address gets no more than the allowance', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 5, maxFailuresPerClient: 100 });
    const burst = await Promise.allSettled(Array.from({ length: 30 }, () => guard.attempt('burst@x.co', 'c')));
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    expect(burst.filter((r) => r.status === 'rejected' && r.reason instanceof TooManyRequests)).toHaveLength(25);
  });

  it('never counts a successful login against the address: forty colleagues behind one NAT log in, as many at once as the limit', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerClient: 2 });
    const logins: PromiseSettledResult<void>[] = [];
    for (let batch = 0; batch < 20; batch++)
      logins.push(
        ...(await Promise.allSettled(
          [0, 1].map(async (j) => {
            await guard.attempt(`${batch}-${j}@x.co`, 'office');
            await guard.succeeded(`${batch}-${j}@x.co`, 'office');
          }),
        )),
      );
    expect(logins).toHaveLength(40);
    expect(logins.filter((r) => r.status === 'rejected')).toEqual([]);
  });

  it('blocks an address that fails across many e-mails, with a Retry-After within the window', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 5, maxFailuresPerClient: 3, windowSeconds: 30 });
    for (const e of ['1@x.co', '2@x.co', '3@x.co']) await fail(guard, e, '10.0.0.9');
    const err = await guard.attempt('4@x.co', '10.0.0.9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TooManyRequests);
    const retry = Number((err as TooManyRequests).headers['Retry-After']);
    expect(retry).toBeGreaterThan(0);
    expect(retry).toBeLessThanOrEqual(30);
    await expect(guard.attempt('4@x.co', '10.0.0.10')).resolves.toBeUndefined();
  });

  it('refuses options that make no sense', () => {
    expect(() => new LoginGuard({ ...limits, maxFailuresPerEmail: 0 })).toThrow('at least 1');
  });

  it('reserves before checking: 40 concurrent wrong logins from one address over 40 e-mails get exactly the limit through', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 5, maxFailuresPerClient: 20 });
    const burst = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => guard.attempt(`${i}@x.co`, '10.1.1.1')),
    );
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(20);
    expect(burst.filter((r) => r.status === 'rejected' && r.reason instanceof TooManyRequests)).toHaveLength(20);
  });

  it('keeps no count for a refused try: the address limit is not spent by an e-mail that is blocked', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 1, maxFailuresPerClient: 3 });
    await fail(guard, 'a@x.co', 'c');
    for (let i = 0; i < 5; i++) await expect(guard.attempt('a@x.co', 'c')).rejects.toBeInstanceOf(TooManyRequests);
    // Two failures of the address are left, whatever the refusals above.
    await fail(guard, 'b@x.co', 'c');
    await fail(guard, 'd@x.co', 'c');
    await expect(guard.attempt('e@x.co', 'c')).rejects.toBeInstanceOf(TooManyRequests);
  });

  it('lets the owner in from an address that signed in before, past the across-addresses limit (ten addresses × five tries)', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 5, maxFailuresPerEmailAnywhere: 50 });
    for (let a = 0; a < 10; a++) for (let t = 0; t < 5; t++) await fail(guard, 'owner@x.co', `203.0.113.${a}`);
    await expect(guard.attempt('owner@x.co', '198.51.100.7')).rejects.toBeInstanceOf(TooManyRequests);
    await expect(guard.attempt('owner@x.co', '198.51.100.7', { knownAddress: true })).resolves.toBeUndefined();
  });

  it('counts an IPv6 address as its /64: rotating addresses inside it gets no more tries', async () => {
    const guard = new LoginGuard({ ...limits, maxFailuresPerEmail: 2, maxFailuresPerClient: 100 });
    await fail(guard, 'v6@x.co', '2001:db8:1:2::1');
    await fail(guard, 'v6@x.co', '2001:db8:1:2:ffff::9');
    await expect(guard.attempt('v6@x.co', '2001:0db8:0001:0002:0:0:0:77')).rejects.toBeInstanceOf(TooManyRequests);
    await expect(guard.attempt('v6@x.co', '2001:db8:1:3::1')).resolves.toBeUndefined();
  });
});

describe('addressKey', () => {
  it('keeps IPv4 and names an IPv6 address by its /64, however it is written', () => {
    expect(addressKey('10.0.0.5')).toBe('10.0.0.5');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('2001:0DB8:0000:0000:1:2:3:4')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1:2:3:4:5')).toBe('fe80:0:0:1::/64');
    // An IPv4 address however IPv6 spells it is that IPv4 address, never the shared bucket of 0:0:0:0::/64.
    for (const v4 of ['::ffff:1.2.3.4', '0:0:0:0:0:ffff:1.2.3.4', '::ffff:102:304', '::1.2.3.4'])
      expect(addressKey(v4), v4).toBe('1.2.3.4');
  });
});

describe('UserService.ensureAdmin', () => {
  it('creates one admin when several replicas start at once on one database, and none of them fails', async () => {
    const admin = { email: `first-${Date.now()}@toko.test`, password: 'admin-password-1' };
    const replicas = [service(countingHasher()), service(countingHasher()), service(countingHasher())];
    await Promise.all(replicas.map((r) => r.ensureAdmin(admin)));
    const rows = await sqlDatabase(app.server, 'user').sql.query<{ role: string }>(
      `select "role" from "users"."users" where "email" = $1`,
      [admin.email],
    );
    expect(rows).toEqual([{ role: 'admin' }]);
  });
});
