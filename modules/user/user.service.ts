import { randomBytes, randomUUID } from 'node:crypto';
import { UniqueConstraintViolationException, type EntityManager } from '@mikro-orm/core';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { ACCOUNTS_TOPIC, fitsBcrypt, type IssuedToken, type PasswordHasher, type TokenIssuer } from '../../kit/auth.ts';
import type { EventRecorder } from '../../kit/events.ts';
import type { Page } from '../../kit/pagination.ts';
import { UserNotFound, type UserDto } from './contract.ts';
import { addressKey, type LoginGuard, type SignUpGuard } from './login-guard.ts';
import { UserEntity, type User } from './user.entity.ts';
import { InvalidCredentials, LastAdmin, UserAlreadyExists } from './user.errors.ts';
import { CONTROL_OR_FORMAT, isUuid } from '../../kit/values.ts';
import { ValidationFailed } from '../../kit/errors.ts';
import { ReadCache } from '../../kit/read-cache.ts';
import { LocalInvalidations, type Invalidations } from '../../kit/shared.ts';
import type { Sql } from '../../kit/sql.ts';
import { table } from './schema.ts';

export interface UserServiceDeps {
  orm: MikroORM;
  sql: Sql;
  passwords: PasswordHasher;
  tokens: TokenIssuer;
  guard: LoginGuard;
  /** Throttles registrations that hit a taken e-mail or username, per address. */
  signUps?: SignUpGuard;
  events: EventRecorder;
  logger: Logger;
  /** How long a user read by id may be served from memory; 0 reads every time. */
  cacheTtlMs?: number;
  /** Where cache drops and account changes are published to every replica (in process when not given). */
  invalidations?: Invalidations;
  /** Addresses that signed in to an account within this many days are exempt from its across-addresses limit (0: none is). */
  knownAddressDays?: number;
}

export interface NewUser {
  email: string;
  username: string;
  password: string;
  fullName: string;
}

export function toUserDto(u: User): UserDto {
  return {
    id: u.id,
    email: u.email,
    username: u.username,
    fullName: u.fullName,
    role: u.role,
    isActive: u.isActive,
    isVerified: u.isVerified,
    createdAt: u.createdAt.toISOString(),
    updatedAt: u.updatedAt.toISOString(),
  };
}

/** The columns of a user everyone with access may see (never the password hash), as the reads select them. */
const COLUMNS = `"id", "email", "username", "full_name", "role", "is_active", "is_verified", "created_at", "updated_at"`;

interface UserRow {
  id: string;
  email: string;
  username: string;
  full_name: string;
  role: User['role'];
  is_active: boolean;
  is_verified: boolean;
  created_at: string | Date;
  updated_at: string | Date;
}

const fromRow = (r: UserRow): UserDto => ({
  id: r.id,
  email: r.email,
  username: r.username,
  fullName: r.full_name,
  role: r.role,
  isActive: r.is_active,
  isVerified: r.is_verified,
  createdAt: new Date(r.created_at).toISOString(),
  updatedAt: new Date(r.updated_at).toISOString(),
});

const DAY_MS = 86_400_000;

function takenField(err: UniqueConstraintViolationException): 'email' | 'username' {
  return err.message.includes('users_username_unique') ? 'username' : 'email';
}

export class UserService {
  /**
   * Users by id: every order checks its customer and every notification
   * reads its recipient. Any change to a user made here drops it at once;
   * another replica of the user module may answer up to the TTL late.
   */
  private readonly byId: ReadCache<UserDto>;
  private readonly invalidations: Invalidations;

  constructor(private readonly d: UserServiceDeps) {
    this.invalidations = d.invalidations ?? new LocalInvalidations();
    this.byId = new ReadCache({
      ttlMs: d.cacheTtlMs ?? 0,
      max: 10_000,
      shared: { invalidations: this.invalidations, topic: 'user.byId' },
    });
  }

  /** What is cached of these accounts is dropped on every replica, and every process's account check hears of it, before the change is answered. */
  private async accountsChanged(ids: string[]): Promise<void> {
    await this.byId.forget(ids);
    await this.invalidations.publish(ACCOUNTS_TOPIC, ids);
    // Once more after another replica's users-by-id entry has surely gone: a process that heard the first drop
    // and asked a replica whose drop had not yet arrived may have cached the old account again.
    setTimeout(() => void this.invalidations.publish(ACCOUNTS_TOPIC, ids), (this.d.cacheTtlMs ?? 0) + 100).unref();
  }

  private em(): EntityManager {
    return this.d.orm.em.fork();
  }

  /** Creates a customer. Throws UserAlreadyExists naming the taken field. */
  async register(input: NewUser, client = 'internal'): Promise<UserDto> {
    await this.d.signUps?.attempt(client);
    try {
      return await this.create(input);
    } catch (err) {
      // Counted as the conflict is found; one past the limit answers 429 instead of telling that the account exists.
      if (err instanceof UserAlreadyExists) await this.d.signUps?.conflicted(client);
      throw err;
    }
  }

  private async create(input: NewUser): Promise<UserDto> {
    const em = this.em();
    const clash = await em.findOne(UserEntity, { $or: [{ email: input.email }, { username: input.username }] });
    if (clash) {
      const field = clash.email === input.email ? 'email' : 'username';
      throw new UserAlreadyExists(`A user with this ${field} already exists`, { field });
    }
    const passwordHash = await this.d.passwords.hash(input.password);
    const now = new Date();
    let user: User;
    try {
      // The user and its user.registered event commit together, or neither does.
      user = await em.transactional(async (tx) => {
        const created = tx.create(UserEntity, {
          id: randomUUID(),
          email: input.email,
          username: input.username,
          passwordHash,
          fullName: input.fullName,
          role: 'customer',
          isActive: true,
          isVerified: false,
          createdAt: now,
          updatedAt: now,
        });
        await tx.flush();
        await this.d.events.record(tx, 'user.registered', {
          userId: created.id,
          email: created.email,
          username: created.username,
          fullName: created.fullName,
        });
        return created;
      });
    } catch (err) {
      // Two registrations raced past the check above; the unique constraint decides.
      if (err instanceof UniqueConstraintViolationException) {
        const field = takenField(err);
        throw new UserAlreadyExists(`A user with this ${field} already exists`, { field });
      }
      throw err;
    }
    this.d.events.wake();
    this.d.logger.info({ userId: user.id }, 'user registered');
    return toUserDto(user);
  }

  /**
   * Exchanges e-mail and password for an access token. Unknown e-mail, wrong
   * password and disabled account give the same InvalidCredentials after the
   * same work; repeated failures are throttled by the guard.
   */
  async login(input: { email: string; password: string }, client: string): Promise<IssuedToken> {
    const user = await this.checkPassword(input, client);
    return this.d.tokens.issue({ id: user.id, role: user.role });
  }

  /** The account an e-mail and password belong to, under the login throttle; InvalidCredentials otherwise. */
  async checkPassword(
    input: { email: string; password: string },
    client: string,
  ): Promise<{ id: string; role: UserDto['role'] }> {
    // A control character (a NUL...) is in no e-mail: refused before it reaches the database, as a wrong e-mail is.
    if (!fitsBcrypt(input.password) || CONTROL_OR_FORMAT.test(input.email))
      throw new InvalidCredentials('E-mail or password is wrong');
    const address = addressKey(client);
    const days = this.d.knownAddressDays ?? 0;
    const [user] = await this.d.sql.query<{
      id: string;
      role: UserDto['role'];
      is_active: boolean;
      password_hash: string;
      known_at: string | Date | null;
    }>(
      `select "u"."id", "u"."role", "u"."is_active", "u"."password_hash",
              (select max("k"."signed_in_at") from ${table('known_addresses')} "k"
                where "k"."user_id" = "u"."id" and "k"."address" = $2
                  and "k"."signed_in_at" > now() - $3::int * interval '1 day') as "known_at"
         from ${table('users')} "u" where "u"."email" = $1`,
      [input.email, address, days],
      'users.signIn',
    );
    const knownAddress = Boolean(user?.known_at);
    await this.d.guard.attempt(input.email, client, { knownAddress });
    // An unknown e-mail costs one bcrypt comparison too.
    const matches = await this.d.passwords.verify(input.password, user?.password_hash ?? this.d.passwords.dummy);
    if (!user || !matches || !user.is_active) throw new InvalidCredentials('E-mail or password is wrong');
    await this.d.guard.succeeded(input.email, client, { knownAddress });
    // Remembered (refreshed at most daily): from here, this account's across-addresses limit never locks this address out.
    if (days > 0 && (!user.known_at || Date.now() - new Date(user.known_at).getTime() > DAY_MS))
      await this.d.sql
        .query(
          `with "gone" as (
           delete from ${table('known_addresses')}
            where "user_id" = $1 and "address" <> $2 and "signed_in_at" <= now() - $3::int * interval '1 day'
         )
         insert into ${table('known_addresses')} ("user_id", "address", "signed_in_at") values ($1, $2, now())
         on conflict ("user_id", "address") do update set "signed_in_at" = excluded."signed_in_at"`,
          [user.id, address, days],
          'users.knownAddress',
        )
        // Best effort: the login succeeded; an address not remembered this time only loses its exemption.
        .catch((err: unknown) =>
          this.d.logger.warn({ err, userId: user.id }, 'could not remember the sign-in address'),
        );
    return { id: user.id, role: user.role };
  }

  /**
   * Throws UserNotFound for unknown and malformed ids alike. The hottest read
   * of the module (every /me, every order): one prepared statement, no unit of work.
   */
  async get(id: string): Promise<UserDto> {
    if (!isUuid(id)) throw new UserNotFound(`No user with id ${id}`, { id });
    return this.byId.get(id, async () => {
      const rows = await this.d.sql.query<UserRow>(
        `select ${COLUMNS} from ${table('users')} where "id" = $1`,
        [id],
        'users.get',
      );
      if (!rows[0]) throw new UserNotFound(`No user with id ${id}`, { id });
      return fromRow(rows[0]);
    });
  }

  async getMany(ids: string[]): Promise<UserDto[]> {
    const valid = [...new Set(ids.filter((id) => isUuid(id)))];
    if (valid.length === 0) return [];
    const rows = await this.d.sql.query<UserRow>(
      `select ${COLUMNS} from ${table('users')} where "id" = any($1::uuid[])`,
      [valid],
      'users.getMany',
    );
    return rows.map(fromRow);
  }

  /**
   * Oldest first; the total comes with the page, or from a count when the page is past the end. The total is a
   * scalar subquery, counted once, not a window count: `count(*) over ()` made PostgreSQL read and hold every
   * row to count them before the limit (3.5 ms against 0.9 ms for the first page of 10,000 users).
   */
  async list(page: { skip: number; limit: number }): Promise<Page<UserDto>> {
    const rows = await this.d.sql.query<UserRow & { total: string }>(
      `select ${COLUMNS}, (select count(*) from ${table('users')}) as "total" from ${table('users')} order by "created_at", "id" limit $1 offset $2`,
      [page.limit, page.skip],
      'users.list',
    );
    const total = rows[0]
      ? Number(rows[0].total)
      : Number(
          (await this.d.sql.query<{ n: string }>(`select count(*) as "n" from ${table('users')}`, [], 'users.count'))[0]
            ?.n ?? 0,
        );
    return { items: rows.map(fromRow), total, skip: page.skip, limit: page.limit };
  }

  /**
   * An admin takes access back or hands it out: deactivates or reactivates a
   * user, changes a role. Not on one's own account, and never the last
   * active admin (either would lock the shop out of its own administration):
   * throws ValidationFailed, LastAdmin. The old tokens, or the old role,
   * stop working before this answers in this process, and within
   * milliseconds in every other (ACCOUNTS_TOPIC over Redis; at worst within
   * ACCOUNT_CHECK_TTL_MS).
   */
  async setAccess(
    rawId: string,
    change: { isActive?: boolean; role?: UserDto['role'] },
    actorId: string,
  ): Promise<UserDto> {
    // Ids match any case in the database: compare them in one spelling, or `ABC…` passes for someone else.
    const id = rawId.toLowerCase();
    if (!isUuid(id)) throw new UserNotFound(`No user with id ${id}`, { id });
    if (id === actorId.toLowerCase())
      throw new ValidationFailed('You cannot change your own access', {
        errors: [{ path: 'id', message: 'Must be another user’s id' }],
      });
    const rows = await this.d.sql.transaction(async (tx) => {
      // One change of admins at a time: two admins demoting each other at once must not both succeed.
      await tx.query(`select pg_advisory_xact_lock(hashtext('toko.users.admins'))`);
      return tx.query<UserRow & { last_admin: boolean }>(
        `with "target" as (select * from ${table('users')} where "id" = $1),
              "blocked" as (
                select ("t"."role" = 'admin' and "t"."is_active")
                   and not (coalesce($2, "t"."is_active") and coalesce($3, "t"."role") = 'admin')
                   and not exists (select 1 from ${table('users')} "o" where "o"."id" <> $1 and "o"."role" = 'admin' and "o"."is_active") as "last_admin"
                from "target" "t"
              ),
              "changed" as (
                update ${table('users')} set "is_active" = coalesce($2, "is_active"), "role" = coalesce($3, "role"), "updated_at" = now()
                where "id" = $1 and not (select "last_admin" from "blocked")
                returning ${COLUMNS}
              )
         select "c".*, false as "last_admin" from "changed" "c"
         union all
         select ${COLUMNS}, true from "target" where (select "last_admin" from "blocked")`,
        [id, change.isActive ?? null, change.role ?? null],
      );
    });
    const row = rows[0];
    if (!row) throw new UserNotFound(`No user with id ${id}`, { id });
    if (row.last_admin) throw new LastAdmin('This is the last active admin: make another admin first', { id });
    await this.accountsChanged([id]);
    const user = fromRow(row);
    this.d.logger.info({ userId: id, isActive: user.isActive, role: user.role, by: actorId }, 'user access changed');
    return user;
  }

  /**
   * Creates the configured admin, or makes sure the existing account is an active admin with that password.
   * Idempotent, also when several replicas start at once on one database.
   */
  async ensureAdmin(admin: { email: string; password: string }, raced = false): Promise<void> {
    const em = this.em();
    const existing = await em.findOne(UserEntity, { email: admin.email }, { populate: ['passwordHash'] });
    const now = new Date();
    if (!existing) {
      em.create(UserEntity, {
        id: randomUUID(),
        email: admin.email,
        username: await this.freeUsername(em, admin.email),
        passwordHash: await this.d.passwords.hash(admin.password),
        fullName: 'Administrator',
        role: 'admin',
        isActive: true,
        isVerified: true,
        createdAt: now,
        updatedAt: now,
      });
      try {
        await em.flush();
      } catch (err) {
        // Another replica starting at the same moment created it first: make sure of that one instead.
        if (err instanceof UniqueConstraintViolationException && !raced) return this.ensureAdmin(admin, true);
        throw err;
      }
      this.d.logger.info({ email: admin.email }, 'admin account created');
      return;
    }
    const samePassword = await this.d.passwords.verify(admin.password, existing.passwordHash);
    if (existing.role === 'admin' && existing.isActive && samePassword) return;
    existing.role = 'admin';
    existing.isActive = true;
    if (!samePassword) existing.passwordHash = await this.d.passwords.hash(admin.password);
    existing.updatedAt = now;
    await em.flush();
    await this.accountsChanged([existing.id]);
    this.d.logger.info({ email: admin.email }, 'admin account updated');
  }

  private async freeUsername(em: EntityManager, email: string): Promise<string> {
    const base =
      (email.split('@')[0] ?? '')
        .toLowerCase()
        .replace(/[^a-z0-9_.-]/g, '')
        .slice(0, 24)
        .padEnd(3, '_') || 'admin';
    for (let candidate = base, i = 0; i < 20; i++, candidate = `${base}-${randomBytes(3).toString('hex')}`) {
      if (!(await em.count(UserEntity, { username: candidate }))) return candidate;
    }
    throw new Error('could not find a free username for the admin account');
  }
}
