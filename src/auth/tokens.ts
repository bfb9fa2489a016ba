import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { LRUCache } from 'lru-cache';
import { z } from 'zod';
import {
  ACCOUNTS_TOPIC,
  ROLES,
  type AccessClaims,
  type AccountStatus,
  type IssuedToken,
  type Role,
  type TokenIssuer,
} from '../../kit/auth.ts';
import { Unauthorized } from '../../kit/errors.ts';
import { ReadCache } from '../../kit/read-cache.ts';
import type { Invalidations } from '../../kit/shared.ts';
import type { SigningKeys } from './keys.ts';

export interface TokenOptions {
  keys: SigningKeys;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}

const claimsSchema = z.object({
  sub: z.string().min(1),
  role: z.enum(ROLES),
  iat: z.number(),
  exp: z.number(),
  iss: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
});

export function createTokenIssuer(opts: TokenOptions): TokenIssuer {
  const o = { ...opts };
  if (o.ttlSeconds < 1) throw new Error('ttlSeconds must be at least 1');
  // Parsed once: handing jsonwebtoken the PEM text makes it parse the key on every call.
  const privateKey = createPrivateKey(o.keys.privateKey);
  return {
    issue(subject: { id: string; role: Role }): IssuedToken {
      const accessToken = jwt.sign({ role: subject.role }, privateKey, {
        algorithm: 'RS256',
        keyid: o.keys.kid,
        subject: subject.id,
        issuer: o.issuer,
        audience: o.audience,
        expiresIn: o.ttlSeconds,
      });
      return { accessToken, expiresIn: o.ttlSeconds };
    },
    // The signing key and the extra ones of a rotation, so every verifier accepts tokens of any of them.
    jwks: () => ({ keys: o.keys.verification.map((k) => k.jwk as Record<string, unknown>) }),
  };
}

/** Verifies an access token; rejects with Unauthorized. */
export type TokenVerifier = (token: string) => Promise<AccessClaims>;

/**
 * Verifies a token locally with the public key — or, given the signing keys,
 * with the key the token's `kid` names among them (the signing key and the
 * extra keys of a rotation); a token without a kid is checked against the
 * signing key, an unknown kid is refused. The algorithm is pinned to RS256,
 * so `alg: none` and HS256 tokens (signed with the public key as an HMAC
 * secret) are refused like any tampered token.
 */
export function createTokenVerifier(
  opts: { issuer: string; audience: string } & (
    { publicKey: string | KeyObject } | { keys: Pick<SigningKeys, 'kid' | 'verification'> }
  ),
): TokenVerifier {
  // Parsed once: the profile of the order benchmark showed PEM parsing as the top cost per request.
  const byKid =
    'keys' in opts
      ? new Map(opts.keys.verification.map((k) => [k.kid, k.key]))
      : new Map<string | undefined, KeyObject>();
  const signing =
    'keys' in opts
      ? byKid.get(opts.keys.kid)!
      : typeof opts.publicKey === 'string'
        ? createPublicKey(opts.publicKey)
        : opts.publicKey;
  return remembered(async (token) => {
    const kid = byKid.size > 0 ? jwt.decode(token, { complete: true })?.header.kid : undefined;
    const key = kid === undefined ? signing : byKid.get(kid);
    if (!key) throw new Unauthorized('The access token is not valid');
    return verifyWith(token, key, opts);
  });
}

/**
 * A verifier that remembers the tokens it has verified until they expire:
 * a client sends the same token with every request, and checking an RS256
 * signature (with jsonwebtoken's decoding around it) was a tenth of an
 * authenticated read in the profile. Only exact tokens already verified are
 * answered from memory; anything else is verified in full.
 */
export function remembered(verify: TokenVerifier, opts: { max?: number } = {}): TokenVerifier {
  const cache = new LRUCache<string, AccessClaims>({ max: opts.max ?? 10_000, ttl: 3_600_000, ttlAutopurge: false });
  return async (token) => {
    const known = cache.get(token);
    if (known) return known;
    const claims = await verify(token);
    const ttl = claims.exp * 1000 - Date.now();
    if (ttl > 0) cache.set(token, claims, { ttl });
    return claims;
  };
}

/** Checks signature (RS256 only), issuer, audience, expiry and the claims' shape. */
export function verifyWith(
  token: string,
  key: string | KeyObject,
  opts: { issuer: string; audience: string },
): AccessClaims {
  let decoded: unknown;
  try {
    decoded = jwt.verify(token, key, { algorithms: ['RS256'], issuer: opts.issuer, audience: opts.audience });
  } catch (err) {
    const expired = err instanceof jwt.TokenExpiredError;
    throw new Unauthorized(expired ? 'The access token has expired' : 'The access token is not valid');
  }
  const claims = claimsSchema.safeParse(decoded);
  if (!claims.success) throw new Unauthorized('The access token is not valid');
  return claims.data;
}

/** What the account check needs of a user (the identity capability's `account`): whether it may still act, and as what. */
export type AccountLookup = (userId: string) => Promise<AccountStatus | undefined>;

/**
 * A verifier that also asks whether the token's account may still act: a
 * deactivated (or deleted) user's tokens are refused, and a changed role
 * replaces the token's. Answers are kept for `ttlMs` per user (one user
 * lookup per user per interval), and dropped as soon as the identity module
 * says the account changed (ACCOUNTS_TOPIC: at once in its own process, over
 * Redis in the others); the TTL (ACCOUNT_CHECK_TTL_MS, under 60 s) is the
 * backstop for a drop that did not arrive.
 */
export function accountChecked(
  verify: TokenVerifier,
  lookup: AccountLookup,
  ttlMs: number,
  invalidations: Invalidations,
): TokenVerifier {
  // A gone account is cached as inactive; misses that arrive together share one lookup.
  const accounts = new ReadCache<AccountStatus>({
    ttlMs,
    max: 50_000,
    shared: { invalidations, topic: ACCOUNTS_TOPIC },
  });
  return async (token) => {
    const claims = await verify(token);
    const account = await accounts.get(
      claims.sub,
      async () => (await lookup(claims.sub)) ?? { isActive: false, role: claims.role },
    );
    if (!account.isActive) throw new Unauthorized('This account is no longer active');
    return account.role === claims.role ? claims : { ...claims, role: account.role };
  };
}
