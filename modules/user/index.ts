import { z } from 'zod';
import { MAX_PASSWORD_BYTES, fitsBcrypt, type PasswordHasher, type TokenIssuer } from '../../kit/auth.ts';
import { blankIsUnset, int, optionalString } from '../../kit/env.ts';
import type { EventRecorder } from '../../kit/events.ts';
import { Unauthorized } from '../../kit/errors.ts';
import { defineModule, type SqlDeps } from '../../kit/module.ts';
import type { SharedState } from '../../kit/shared.ts';
import { InvalidCredentials, UserNotFound, userContract } from './contract.ts';
import { LoginGuard, SignUpGuard, type LoginGuardOptions } from './login-guard.ts';
import { userMigrations } from './migrations/index.ts';
import { UserEntity } from './user.entity.ts';
import { userRoutes, type UserRuntime } from './user.routes.ts';
import { UserService } from './user.service.ts';
import { SCHEMA } from './schema.ts';

export interface UserDeps extends SqlDeps {
  passwords: PasswordHasher;
  tokens: TokenIssuer;
  events: EventRecorder;
  login: LoginGuardOptions & { maxSignUpConflictsPerClient: number; maxSignUpsPerClient: number };
  /** Created or updated at start-up when given. */
  admin?: { email: string; password: string };
  /** How long a user read by id may be served from memory (0: never). */
  cacheTtlMs: number;
  /** Throttles and cache drops shared with the other replicas. */
  shared: SharedState;
  /** Addresses that signed in to an account within this many days are exempt from its across-addresses limit. */
  knownAddressDays: number;
}

/** The user module's own variables. */
const userSettings = z
  .object({
    LOGIN_MAX_FAILURES: int(1, 1000, 5).meta({
      description:
        'tries for one e-mail from one client address within the window before 429 (counted as they start, given back by a success); the owner, from another address, can still log in',
    }),
    LOGIN_MAX_FAILURES_PER_CLIENT: int(1, 100_000, 20).meta({
      description:
        'failed logins from one client address, over any e-mails, within the window before 429; successful logins never count, so many people behind one address can log in at once',
    }),
    LOGIN_MAX_FAILURES_PER_EMAIL: int(1, 100_000, 50).meta({
      description:
        'failed logins for one e-mail from all addresses together within the window before 429: the slower limit for guessing spread over many addresses',
    }),
    REGISTER_MAX_CONFLICTS_PER_CLIENT: int(1, 100_000, 10).meta({
      description:
        'registrations answered 409 (e-mail or username taken) per client address within the login window before 429: a 409 tells that an account exists, so finding out who has one is throttled; registrations that succeed never count. We keep the 409 (a clear answer to a real customer who forgot they signed up) and throttle it rather than hide it',
    }),
    REGISTER_MAX_PER_CLIENT: int(1, 1_000_000, 30).meta({
      description:
        'registrations per client address within the login window before 429 (counted as they start, so a burst from one address gets no more); raise it for a kiosk or a test rig that signs many people up from one address',
    }),
    LOGIN_WINDOW_SECONDS: int(1, 86_400, 900).meta({ description: 'the login throttling window' }),
    LOGIN_KNOWN_ADDRESS_DAYS: int(0, 3650, 30).meta({
      description:
        'an address (an IPv6 address: its /64) that signed in to an account within this many days is exempt from that account’s across-addresses limit (`LOGIN_MAX_FAILURES_PER_EMAIL`), so a guesser with many addresses cannot lock the owner out; its per-address limits still apply. `0`: no address is exempt',
    }),
    USER_CACHE_TTL_MS: int(0, 60_000, 1000).meta({
      description:
        "a user read by id (each order's customer check, each notification's recipient, `GET /users/:id`) may be answered from the user module's memory for this long; a change made in the process drops it at once, so only other replicas of the user module can be this much behind. `0` turns the cache off",
    }),
    ADMIN_EMAIL: z
      .preprocess(blankIsUnset, z.email('expected an e-mail address').optional())
      .meta({ description: 'administrator created or updated at start-up (with `ADMIN_PASSWORD`)' }),
    ADMIN_PASSWORD: optionalString
      .pipe(
        z
          .string()
          .min(8, 'expected at least 8 characters')
          .refine(fitsBcrypt, `expected at most ${MAX_PASSWORD_BYTES} bytes (bcrypt reads no more)`)
          .optional(),
      )
      .meta({
        description: `that administrator's password, 8 characters to ${MAX_PASSWORD_BYTES} bytes (a longer one is a configuration error)`,
      }),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.ADMIN_EMAIL) !== Boolean(env.ADMIN_PASSWORD)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.ADMIN_EMAIL ? 'ADMIN_PASSWORD' : 'ADMIN_EMAIL'],
        message: 'expected to be set together with the other ADMIN_ variable',
      });
    }
  });

export const userModule = defineModule<UserDeps, UserRuntime, typeof userContract, typeof userSettings>({
  name: 'user',
  schema: SCHEMA,
  contract: userContract,
  requires: [],
  entities: [UserEntity],
  migrations: userMigrations,
  routes: userRoutes,
  // The accounts live here: the kernel checks each token's account, and signs Bull Board's users in, through this port.
  provides: {
    identity: (users) => ({
      account: (id) =>
        users.getUser({ id }).then(
          (u) => ({ isActive: u.isActive, role: u.role }),
          (err: unknown) => (err instanceof UserNotFound ? undefined : Promise.reject(err)),
        ),
      signIn: (credentials) =>
        users.signIn(credentials).catch((err: unknown) => {
          throw err instanceof InvalidCredentials ? new Unauthorized('The e-mail or password is wrong') : err;
        }),
    }),
  },
  // The first administrator is made at start-up; the signing keys live on its volume.
  deploy: {
    env: {
      ADMIN_EMAIL: '${ADMIN_EMAIL:-admin@toko.local}',
      ADMIN_PASSWORD: '${ADMIN_PASSWORD:?set ADMIN_PASSWORD (8 to 72 bytes) for the first administrator}',
    },
    volumes: ['user-data:/data'],
  },
  settings: userSettings,
  wire: (k) => ({
    ...k.base,
    ...k.sql(),
    passwords: k.passwords(),
    tokens: k.tokens,
    events: k.events(),
    login: {
      maxFailuresPerEmail: k.settings.LOGIN_MAX_FAILURES,
      maxFailuresPerClient: k.settings.LOGIN_MAX_FAILURES_PER_CLIENT,
      maxFailuresPerEmailAnywhere: k.settings.LOGIN_MAX_FAILURES_PER_EMAIL,
      maxSignUpConflictsPerClient: k.settings.REGISTER_MAX_CONFLICTS_PER_CLIENT,
      maxSignUpsPerClient: k.settings.REGISTER_MAX_PER_CLIENT,
      windowSeconds: k.settings.LOGIN_WINDOW_SECONDS,
    },
    admin:
      k.settings.ADMIN_EMAIL && k.settings.ADMIN_PASSWORD
        ? { email: k.settings.ADMIN_EMAIL.toLowerCase(), password: k.settings.ADMIN_PASSWORD }
        : undefined,
    cacheTtlMs: k.settings.USER_CACHE_TTL_MS,
    shared: k.shared,
    knownAddressDays: k.settings.LOGIN_KNOWN_ADDRESS_DAYS,
  }),
  async create(deps) {
    const service = new UserService({
      ...deps,
      invalidations: deps.shared.invalidations,
      guard: new LoginGuard(deps.login, (o) => deps.shared.limiter(o)),
      signUps: new SignUpGuard(
        {
          maxConflicts: deps.login.maxSignUpConflictsPerClient,
          maxPerClient: deps.login.maxSignUpsPerClient,
          windowSeconds: deps.login.windowSeconds,
        },
        (o) => deps.shared.limiter(o),
      ),
    });
    return {
      runtime: { service, tokens: deps.tokens },
      implementation: {
        getUser: ({ id }) => service.get(id),
        getUsers: ({ ids }) => service.getMany(ids),
        signIn: ({ email, password, client }) =>
          service.checkPassword({ email: email.trim().toLowerCase(), password }, client),
      },
      start: async () => {
        if (deps.admin) await service.ensureAdmin(deps.admin);
      },
    };
  },
});
