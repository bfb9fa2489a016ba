import { Forbidden } from './errors.ts';

/** Roles known to every module; the user module is the one that assigns them. */
export const ROLES = ['customer', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** Claims of a verified access token. */
export interface AccessClaims {
  sub: string;
  role: Role;
  iat: number;
  exp: number;
  iss: string;
  aud: string | string[];
}

/** Who is calling, as established by the kernel's auth middleware from a verified token. */
export interface Principal {
  userId: string;
  role: Role;
  claims: AccessClaims;
}

/** Hashes and checks passwords off the event loop. */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(password: string, hash: string): Promise<boolean>;
  /** A hash no password matches that costs as much to check as a real one: compared when an e-mail is unknown, so both cases take the same time. */
  readonly dummy: string;
}

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
}

/** Signs access tokens and publishes the public half of the key. */
export interface TokenIssuer {
  issue(subject: { id: string; role: Role }): IssuedToken;
  jwks(): { keys: Record<string, unknown>[] };
}

/**
 * The drops topic (kit/shared.ts `Invalidations`) of accounts: the identity
 * module publishes an account's id there whenever what `Identity.account`
 * answers for it changes (deactivated, reactivated, role changed), before it
 * answers the change; every process that trusts what it learnt of accounts
 * (the token check, Bull Board's sign-ins) forgets it at once.
 */
export const ACCOUNTS_TOPIC = 'identity.accounts';

/** What the kernel needs to know of an account behind a token: whether it may still act, and as what. */
export interface AccountStatus {
  isActive: boolean;
  role: Role;
}

/**
 * The identity capability, which exactly one module declares
 * (`provides: { identity }`): the kernel issues tokens where that module is
 * hosted, checks every token's account through it, and signs administrators
 * in to Bull Board through it. Built over the module's port, so it works
 * in process and remote alike.
 */
export interface Identity {
  /** The account behind a token's subject, or undefined when there is none. */
  account(userId: string): Promise<AccountStatus | undefined>;
  /**
   * Checks an e-mail and password under the module's login throttle, counted
   * for `client`. Rejects with Unauthorized when they do not match (and with
   * whatever else the throttle answers, e.g. TooManyRequests).
   */
  signIn(credentials: { email: string; password: string; client: string }): Promise<{ role: Role }>;
}

/** Whether the principal may see something owned by `ownerId`: its owner, or an admin. */
export const canSee = (principal: Principal, ownerId: string): boolean =>
  principal.role === 'admin' || principal.userId === ownerId;

/**
 * The owner filter of a list: an admin gets what they asked for (one user,
 * or everyone); anyone else always gets their own, and asking for someone
 * else's is refused. Returns undefined for "everyone".
 */
export function ownerScope(principal: Principal, requested: string | undefined, what: string): string | undefined {
  if (principal.role === 'admin') return requested;
  if (requested && requested !== principal.userId)
    throw new Forbidden(`Only administrators may list other users’ ${what}`);
  return principal.userId;
}

/**
 * bcrypt reads only the first 72 bytes of a password. Rather than cut longer
 * ones silently (so that any suffix would log in), every place that takes a
 * password refuses more: registration, login, ADMIN_PASSWORD.
 */
export const MAX_PASSWORD_BYTES = 72;

export const fitsBcrypt = (password: string): boolean => Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES;
