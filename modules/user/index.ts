import type { PasswordHasher, TokenIssuer } from '../../src/kit/auth.ts';
import type { EventRecorder } from '../../src/kit/events.ts';
import { defineModule, type SqlDeps } from '../../src/kit/module.ts';
import { userContract } from './contract.ts';
import { LoginGuard, SignUpGuard, type LoginGuardOptions } from './login-guard.ts';
import { userMigrations } from './migrations/index.ts';
import { UserEntity } from './user.entity.ts';
import { userRoutes, type UserRuntime } from './user.routes.ts';
import { UserService } from './user.service.ts';

export interface UserDeps extends SqlDeps {
  passwords: PasswordHasher;
  tokens: TokenIssuer;
  events: EventRecorder;
  login: LoginGuardOptions & { maxSignUpConflictsPerClient: number; maxSignUpsPerClient: number };
  /** Created or updated at start-up when given. */
  admin?: { email: string; password: string };
  /** How long a user read by id may be served from memory (0: never). */
  cacheTtlMs: number;
}

export const userModule = defineModule<UserDeps, UserRuntime, typeof userContract>({
  name: 'user',
  schema: 'users',
  contract: userContract,
  requires: [],
  entities: [UserEntity],
  migrations: userMigrations,
  routes: userRoutes,
  // The first administrator is made at start-up; the signing keys live on its volume.
  deploy: {
    env: {
      ADMIN_EMAIL: '${ADMIN_EMAIL:-admin@toko.local}',
      ADMIN_PASSWORD: '${ADMIN_PASSWORD:?set ADMIN_PASSWORD (8 to 72 bytes) for the first administrator}',
    },
    volumes: ['user-data:/data'],
  },
  async create(deps) {
    const service = new UserService({
      ...deps,
      guard: new LoginGuard(deps.login),
      signUps: new SignUpGuard({ maxConflicts: deps.login.maxSignUpConflictsPerClient, maxPerClient: deps.login.maxSignUpsPerClient, windowSeconds: deps.login.windowSeconds }),
    });
    return {
      runtime: { service, tokens: deps.tokens },
      implementation: {
        getUser: ({ id }) => service.get(id),
        getUsers: ({ ids }) => service.getMany(ids),
        signIn: ({ email, password, client }) => service.checkPassword({ email: email.trim().toLowerCase(), password }, client),
      },
      start: async () => {
        if (deps.admin) await service.ensureAdmin(deps.admin);
      },
    };
  },
});
