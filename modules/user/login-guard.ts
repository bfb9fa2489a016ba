import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequests } from '../../kit/errors.ts';

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
 * Slows password guessing without letting anyone lock anyone else out:
 * - one e-mail from one address: `maxFailuresPerEmail` tries, counted when
 *   they start (a burst of concurrent guesses gets no more), a success gives
 *   them back; so the owner, from another address, still logs in;
 * - one address over any e-mails: `maxFailuresPerClient` failures (only
 *   failures: forty colleagues behind one NAT logging in at once are fine);
 * - one e-mail from everywhere: `maxFailuresPerEmailAnywhere` failures, a
 *   slower limit for guessing spread over many addresses.
 * Past any of them, login answers 429 with Retry-After.
 */
export class LoginGuard {
  private readonly tries: RateLimiterMemory;
  private readonly clientFailures: RateLimiterMemory;
  private readonly emailFailures: RateLimiterMemory;
  private readonly o: LoginGuardOptions;

  constructor(opts: LoginGuardOptions) {
    this.o = { ...opts };
    if (this.o.maxFailuresPerEmail < 1 || this.o.maxFailuresPerClient < 1 || this.o.maxFailuresPerEmailAnywhere < 1)
      throw new Error('failure limits must be at least 1');
    if (this.o.windowSeconds < 1) throw new Error('windowSeconds must be at least 1');
    const duration = this.o.windowSeconds;
    this.tries = new RateLimiterMemory({
      keyPrefix: 'login-email-client',
      points: this.o.maxFailuresPerEmail,
      duration,
    });
    this.clientFailures = new RateLimiterMemory({
      keyPrefix: 'login-client',
      points: this.o.maxFailuresPerClient,
      duration,
    });
    this.emailFailures = new RateLimiterMemory({
      keyPrefix: 'login-email',
      points: this.o.maxFailuresPerEmailAnywhere,
      duration,
    });
  }

  /**
   * Before the password is checked: refuses when the address or the e-mail
   * has used up its failures, then takes one try from this e-mail's allowance
   * at this address. Throws TooManyRequests.
   */
  async attempt(email: string, client: string): Promise<void> {
    const spent = await Promise.all([this.clientFailures.get(client), this.emailFailures.get(email)]);
    const over = spent.filter(
      (r, i): r is RateLimiterRes =>
        r !== null && r.consumedPoints >= [this.o.maxFailuresPerClient, this.o.maxFailuresPerEmailAnywhere][i]!,
    );
    if (over.length) throw this.refusal(Math.max(...over.map((r) => r.msBeforeNext)));
    try {
      await this.tries.consume(key(email, client));
    } catch (err) {
      if (err instanceof Error) throw err;
      throw this.refusal((err as RateLimiterRes).msBeforeNext);
    }
  }

  /** The password was wrong: the address and the e-mail each count a failure (the try stays spent). */
  async failed(email: string, client: string): Promise<void> {
    await Promise.all([this.clientFailures.penalty(client, 1), this.emailFailures.penalty(email, 1)]);
  }

  /** The password was right: this e-mail starts afresh at this address. */
  async succeeded(email: string, client: string): Promise<void> {
    await this.tries.delete(key(email, client));
  }

  private refusal(waitMs: number): TooManyRequests {
    return new TooManyRequests('Too many failed logins; try again later', {
      retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)),
    });
  }
}

const key = (email: string, client: string) => `${email}\u0000${client}`;

/**
 * Throttles registration per client address: at most `maxPerClient`
 * registrations per window (counted as they start, so a concurrent burst gets
 * no more), and at most `maxConflicts` answered 409 (e-mail or username
 * taken: what tells who has an account). Past either, 429 with Retry-After.
 */
export class SignUpGuard {
  private readonly conflicts: RateLimiterMemory;
  private readonly registrations: RateLimiterMemory;

  constructor(private readonly o: { maxConflicts: number; maxPerClient: number; windowSeconds: number }) {
    if (o.maxConflicts < 1 || o.maxPerClient < 1) throw new Error('registration limits must be at least 1');
    this.conflicts = new RateLimiterMemory({
      keyPrefix: 'signup-conflicts',
      points: o.maxConflicts,
      duration: o.windowSeconds,
    });
    this.registrations = new RateLimiterMemory({
      keyPrefix: 'signup-client',
      points: o.maxPerClient,
      duration: o.windowSeconds,
    });
  }

  async attempt(client: string): Promise<void> {
    const spent = await this.conflicts.get(client);
    if (spent && spent.consumedPoints >= this.o.maxConflicts)
      throw refusal(spent.msBeforeNext, 'Too many registrations with taken details from this address; try again later');
    try {
      await this.registrations.consume(client);
    } catch (err) {
      if (err instanceof Error) throw err;
      throw refusal((err as RateLimiterRes).msBeforeNext, 'Too many registrations from this address; try again later');
    }
  }

  async conflicted(client: string): Promise<void> {
    await this.conflicts.penalty(client, 1);
  }
}

const refusal = (waitMs: number, detail: string) =>
  new TooManyRequests(detail, { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) });
