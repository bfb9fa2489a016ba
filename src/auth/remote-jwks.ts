import { createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Logger } from 'pino';
import { ServiceUnavailable, Unauthorized } from '../../kit/errors.ts';
import { remembered, verifyWith, type TokenVerifier } from './tokens.ts';

/**
 * Verifies tokens in a process that does not host the user module, with the
 * public keys the user service publishes at /.well-known/jwks.json: fetched
 * once, cached, and fetched again only for a `kid` it has not seen (at most
 * every `minRefreshMs`), so there is no call to the user service per request.
 */
export function createRemoteVerifier(opts: {
  jwksUrl: string;
  issuer: string;
  audience: string;
  logger: Logger;
  minRefreshMs?: number;
  timeoutMs?: number;
}): TokenVerifier {
  const o = { minRefreshMs: 10_000, timeoutMs: 3000, ...opts };
  let keys = new Map<string, KeyObject>();
  let lastFetch = 0;
  let inFlight: Promise<void> | undefined;

  const refresh = () =>
    (inFlight ??= (async () => {
      try {
        const res = await fetch(o.jwksUrl, { signal: AbortSignal.timeout(o.timeoutMs) });
        if (!res.ok) throw new Error(`JWKS answered ${res.status}`);
        const body = (await res.json()) as { keys?: Record<string, unknown>[] };
        const next = new Map<string, KeyObject>();
        for (const jwk of body.keys ?? []) {
          if (typeof jwk.kid === 'string' && jwk.kty === 'RSA')
            next.set(jwk.kid, createPublicKey({ key: jwk as never, format: 'jwk' }));
        }
        keys = next;
        lastFetch = Date.now();
        o.logger.info({ keys: next.size }, 'verification keys fetched from the user service');
      } catch (err) {
        o.logger.warn({ err: (err as Error).message }, 'could not fetch verification keys');
        throw new ServiceUnavailable('Tokens cannot be verified right now', { retryAfterSeconds: 5 });
      } finally {
        inFlight = undefined;
      }
    })());

  return remembered(async (token) => {
    const header = jwt.decode(token, { complete: true })?.header;
    if (!header?.kid) throw new Unauthorized('The access token is not valid');
    if (!keys.has(header.kid) && (keys.size === 0 || Date.now() - lastFetch >= o.minRefreshMs)) await refresh();
    const key = keys.get(header.kid);
    if (!key) throw new Unauthorized('The access token is not valid');
    return verifyWith(token, key, o);
  });
}
