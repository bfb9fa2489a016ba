import { RateLimiterMemory } from 'rate-limiter-flexible';
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
 * the window has passed. A successful login clears that e-mail's count.
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

  /** Throws TooManyRequests when either the e-mail or the client has used up its failures. */
  async check(email: string, client: string): Promise<void> {
    const [e, c] = await Promise.all([this.byEmail.get(email), this.byClient.get(client)]);
    const blocked = [
      e && e.consumedPoints >= this.o.maxFailuresPerEmail ? e.msBeforeNext : 0,
      c && c.consumedPoints >= this.o.maxFailuresPerClient ? c.msBeforeNext : 0,
    ];
    const waitMs = Math.max(...blocked);
    if (waitMs > 0) {
      throw new TooManyRequests('Too many failed logins; try again later', { retryAfterSeconds: Math.ceil(waitMs / 1000) });
    }
  }

  async failed(email: string, client: string): Promise<void> {
    await Promise.all([this.byEmail.penalty(email, 1), this.byClient.penalty(client, 1)]);
  }

  async succeeded(email: string): Promise<void> {
    await this.byEmail.delete(email);
  }
}
