import { z } from 'zod';
import { ROLES } from '../../kit/auth.ts';
import { defineContract, defineEvent, type PortOf } from '../../kit/contract.ts';
import { TooManyRequests, defineError } from '../../kit/errors.ts';
import { idText } from '../../kit/values.ts';

/** A user as other modules and the public API see it: never a hash. */
export const UserDto = z
  .object({
    id: z.string(),
    email: z.string(),
    username: z.string(),
    fullName: z.string(),
    role: z.enum(ROLES),
    isActive: z.boolean(),
    isVerified: z.boolean(),
    createdAt: z.string().meta({ format: 'date-time' }),
    updatedAt: z.string().meta({ format: 'date-time' }),
  })
  .meta({
    id: 'User',
    example: {
      id: '0193a1b2-0000-7000-8000-000000000001',
      email: 'siti@example.co.id',
      username: 'siti_rahma',
      fullName: 'Siti Rahmawati',
      role: 'customer',
      isActive: true,
      isVerified: false,
      createdAt: '2026-12-03T08:15:00.000Z',
      updatedAt: '2026-12-03T08:15:00.000Z',
    },
  });
export type UserDto = z.infer<typeof UserDto>;

export const UserRegistered = z.object({
  userId: z.string(),
  email: z.string(),
  username: z.string(),
  fullName: z.string(),
});

export class UserNotFound extends defineError(
  'USER.NOT_FOUND',
  404,
  'User not found',
  z
    .object({ id: z.string().meta({ description: 'The id asked for' }) })
    .meta({ example: { id: '0193a1b2-0000-7000-8000-000000000001' } }),
) {}

/** The same 401 for an unknown e-mail, a wrong password and a disabled account. */
export class InvalidCredentials extends defineError('USER.INVALID_CREDENTIALS', 401, 'Invalid credentials') {}

export const userContract = defineContract({
  name: 'user',
  methods: {
    /** One user's profile. Idempotent. Throws UserNotFound. */
    getUser: { input: z.object({ id: idText() }), output: UserDto, idempotent: true },
    /** The profiles of the ids that exist, in no particular order; unknown ids are left out. Idempotent. */
    getUsers: { input: z.object({ ids: z.array(idText()).max(500) }), output: z.array(UserDto), idempotent: true },
    /**
     * Checks an e-mail and password for another place that signs people in
     * (Bull Board's basic auth), under the same throttle as login, counted for
     * `client`. Throws InvalidCredentials, or TooManyRequests with Retry-After.
     */
    signIn: {
      input: z.object({ email: z.string().max(320), password: z.string().max(1024), client: z.string().max(100) }),
      output: z.object({ id: z.string(), role: z.enum(ROLES) }),
      idempotent: false,
    },
  },
  events: {
    'user.registered': defineEvent(UserRegistered, 'userId'),
  },
  errors: [UserNotFound, InvalidCredentials, TooManyRequests],
});

export type UserPort = PortOf<typeof userContract>;
