import { isIP } from 'node:net';
import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequests } from '../../kit/errors.ts';
import type { Limiter, LimiterOptions } from '../../kit/shared.ts';

export interface LoginGuardOptions {
  /** Failed logins allowed for one e-mail from one client address within the window. */
  maxFailuresPerEmail: number;
  /** Failed logins allowed from one client address, whatever the e-mails, within the window. */
  maxFailuresPerClient: number;
  /** Failed logins allowed for one e-mail from every address together within the window: slows a guesser spread over many addresses. */
  maxFailuresPerEmailAnywhere: number;
  windowSeconds: number;
}

/**
 * Slows password guessing without letting anyone lock anyone else out. Every
 * count is reserved before the password is checked (a concurrent burst gets
 * no more than the limit) and given back when the password was right:
 * - one e-mail from one address: `maxFailuresPerEmail` tries; so the owner,
 *   from another address, still logs in;
 * - one address over any e-mails: `maxFailuresPerClient` failures (successes
 *   give their count back: forty colleagues behind one NAT logging in at once
 *   are fine);
 * - one e-mail from everywhere: `maxFailuresPerEmailAnywhere` failures, the
 *   slower limit for guessing spread over many addresses. Addresses that
 *   signed in to this account before (`knownAddress`) are exempt from it, so
 *   a guesser with many addresses cannot lock the owner out.
 * An IPv6 address counts as its /64 (one customer's network: addresses in it
 * are free to whoever holds it). Past any limit, 429 with Retry-After. The
 * counters are the kernel's shared limiters: with REDIS_URL, one count across
 * every replica.
 */
export class LoginGuard {
  private readonly tries: Limiter;
  private readonly clientFailures: Limiter;
  private readonly emailFailures: Limiter;
  private readonly o: LoginGuardOptions;

  constructor(opts: LoginGuardOptions, limiter: (o: LimiterOptions) => Limiter = (o) => new RateLimiterMemory(o)) {
    this.o = { ...opts };
    if (this.o.maxFailuresPerEmail < 1 || this.o.maxFailuresPerClient < 1 || this.o.maxFailuresPerEmailAnywhere < 1)
      throw new Error('failure limits must be at least 1');
    if (this.o.windowSeconds < 1) throw new Error('windowSeconds must be at least 1');
    const duration = this.o.windowSeconds;
    this.tries = limiter({ keyPrefix: 'login-email-client', points: this.o.maxFailuresPerEmail, duration });
    this.clientFailures = limiter({ keyPrefix: 'login-client', points: this.o.maxFailuresPerClient, duration });
    this.emailFailures = limiter({ keyPrefix: 'login-email', points: this.o.maxFailuresPerEmailAnywhere, duration });
  }

  /**
   * Before the password is checked: reserves one failure of the address, of
   * the e-mail (unless the address is known to this account) and one try of
   * this e-mail at this address; throws TooManyRequests, keeping none, when
   * any is used up. A wrong password keeps them; `succeeded` gives them back.
   */
  async attempt(email: string, client: string, opts: { knownAddress?: boolean } = {}): Promise<void> {
    const address = addressKey(client);
    const taken: [Limiter, string][] = [];
    const take = async (limiter: Limiter, key: string) => {
      try {
        await limiter.consume(key);
        taken.push([limiter, key]);
      } catch (err) {
        await Promise.all(taken.map(([l, k]) => l.reward(k).catch(() => undefined)));
        if (err instanceof Error) throw err;
        throw this.refusal((err as RateLimiterRes).msBeforeNext);
      }
    };
    await take(this.clientFailures, address);
    if (!opts.knownAddress) await take(this.emailFailures, email);
    await take(this.tries, key(email, address));
  }

  /** The password was right: the address and the e-mail get their reserved failure back, and this e-mail starts afresh at this address. */
  async succeeded(email: string, client: string, opts: { knownAddress?: boolean } = {}): Promise<void> {
    const address = addressKey(client);
    await Promise.all([
      this.clientFailures.reward(address),
      opts.knownAddress ? undefined : this.emailFailures.reward(email),
      this.tries.delete(key(email, address)),
    ]);
  }

  private refusal(waitMs: number): TooManyRequests {
    return new TooManyRequests('Too many failed logins; try again later', {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    });
  }
}

const key = (email: string, client: string) => `${email}\u0000${client}`;

/**
 * What a client address counts as: an IPv4 address itself, an IPv6 address
 * its /64 (`2001:db8:1:2::/64`), anything else as written.
 */
export function addressKey(client: string): string {
  if (isIP(client) !== 6) return client;
  // A dotted IPv4 tail is two groups.
  const written = client
    .toLowerCase()
    .replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a: string, b: string, c: string, d: string) =>
      [((+a << 8) | +b).toString(16), ((+c << 8) | +d).toString(16)].join(':'),
    );
  const [head = '', tail] = written.split('::');
  const left = head ? head.split(':') : [];
  const right = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right].map((g) =>
    parseInt(g, 16),
  );
  // An IPv4 address written as IPv6 (`::ffff:1.2.3.4`, `0:0:0:0:0:ffff:102:304`, `::1.2.3.4`) is that IPv4 address.
  const [g6 = 0, g7 = 0] = groups.slice(6);
  const compatible = groups[5] === 0 && !written.endsWith('::') && g6 !== 0;
  if (groups.slice(0, 5).every((g) => g === 0) && (groups[5] === 0xffff || compatible))
    return [g6 >> 8, g6 & 255, g7 >> 8, g7 & 255].join('.');
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/**
 * Throttles registration per client address (an IPv6 address as its /64): at
 * most `maxPerClient` registrations per window, counted as they start (a
 * concurrent burst gets no more), and at most `maxConflicts` answered 409
 * (e-mail or username taken: what tells who has an account), counted at the
 * moment a conflict is found: one past the limit is answered 429 instead of
 * 409, so even a concurrent burst learns of no more than `maxConflicts`
 * accounts, while registrations that do not conflict are never held up by
 * it. Past either, 429 with Retry-After.
 */
export class SignUpGuard {
  private readonly conflicts: Limiter;
  private readonly registrations: Limiter;

  constructor(
    private readonly o: { maxConflicts: number; maxPerClient: number; windowSeconds: number },
    limiter: (o: LimiterOptions) => Limiter = (o) => new RateLimiterMemory(o),
  ) {
    if (o.maxConflicts < 1 || o.maxPerClient < 1) throw new Error('registration limits must be at least 1');
    this.conflicts = limiter({ keyPrefix: 'signup-conflicts', points: o.maxConflicts, duration: o.windowSeconds });
    this.registrations = limiter({ keyPrefix: 'signup-client', points: o.maxPerClient, duration: o.windowSeconds });
  }

  /** Refuses an address past its conflicts, then counts a registration of it; throws TooManyRequests. */
  async attempt(client: string): Promise<void> {
    const address = addressKey(client);
    const spent = await this.conflicts.get(address);
    if (spent && spent.consumedPoints >= this.o.maxConflicts) throw conflictsRefusal(spent.msBeforeNext);
    try {
      await this.registrations.consume(address);
    } catch (err) {
      if (err instanceof Error) throw err;
      throw refusal((err as RateLimiterRes).msBeforeNext, 'Too many registrations from this address; try again later');
    }
  }

  /** A conflict was found: counted now; throws TooManyRequests (to answer instead of the 409) when it is one too many. */
  async conflicted(client: string): Promise<void> {
    try {
      await this.conflicts.consume(addressKey(client));
    } catch (err) {
      if (err instanceof Error) throw err;
      throw conflictsRefusal((err as RateLimiterRes).msBeforeNext);
    }
  }
}

const conflictsRefusal = (waitMs: number) =>
  refusal(waitMs, 'Too many registrations with taken details from this address; try again later');

const refusal = (waitMs: number, detail: string) =>
  new TooManyRequests(detail, { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) });
