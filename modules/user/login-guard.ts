import { RateLimiterMemory, type RateLimiterRes } from 'rate-limiter-flexible';
import { TooManyRequests } from '../../src/kit/errors.ts';

export interface LoginGuardOptions {
  /** Failed logins allowed for one e-mail within the window. */
  maxFailuresPerEmail: number;
  /** Failed logins allowed from one client address within the window. */
  maxFailuresPerClient: number;
  windowSeconds: number;
}

/**
 * Slows password guessing: after N failed logins for one e-mail, or M from
 * one client, within the window, login answers 429 with Retry-After until
 * the window has passed. Attempts are counted when they start, not when they
 * fail; a successful login clears that e-mail's count.
 */
export class LoginGuard {
  private readonly byEmail: RateLimiterMemory;
  private readonly byClient: RateLimiterMemory;
  private readonly o: LoginGuardOptions;

  constructor(opts: LoginGuardOptions) {
    this.o = { ...opts };
    if (this.o.maxFailuresPerEmail < 1 || this.o.maxFailuresPerClient < 1) throw new Error('failure limits must be at least 1');
    if (this.o.windowSeconds < 1) throw new Error('windowSeconds must be at least 1');
    this.byEmail = new RateLimiterMemory({ keyPrefix: 'login-email', points: this.o.maxFailuresPerEmail, duration: this.o.windowSeconds });
    this.byClient = new RateLimiterMemory({ keyPrefix: 'login-client', points: this.o.maxFailuresPerClient, duration: this.o.windowSeconds });
  }

  /**
   * Takes one attempt from the e-mail's and the client's allowance before the
   * password is even checked, so a burst of concurrent guesses cannot all get
   * through while the first ones are still hashing. Throws TooManyRequests
   * when either allowance is used up. A successful login gives its attempt back.
   */
  async attempt(email: string, client: string): Promise<void> {
    const taken = await Promise.allSettled([this.byEmail.consume(email), this.byClient.consume(client)]);
    const refused = taken.flatMap((t) => (t.status === 'rejected' ? [t.reason as unknown] : []));
    if (refused.length === 0) return;
    const failure = refused.find((r) => r instanceof Error);
    if (failure) throw failure;
    const waitMs = Math.max(...refused.map((r) => (r as RateLimiterRes).msBeforeNext));
    throw new TooManyRequests('Too many failed logins; try again later', { retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) });
  }

  /** The attempt was right: the e-mail starts afresh, and the client gets its attempt back. */
  async succeeded(email: string, client: string): Promise<void> {
    await Promise.all([this.byEmail.delete(email), this.byClient.reward(client, 1)]);
  }
}
