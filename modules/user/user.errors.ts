import { z } from 'zod';
import { defineError } from '../../kit/errors.ts';

/** 409; `field` names which of email or username is taken. */
export class UserAlreadyExists extends defineError(
  'USER.ALREADY_EXISTS',
  409,
  'User already exists',
  z
    .object({ field: z.enum(['email', 'username']).meta({ description: 'Which one is taken' }) })
    .meta({ example: { field: 'email' } }),
) {}

/** 409; the change would leave the shop without an active admin. */
export class LastAdmin extends defineError(
  'USER.LAST_ADMIN',
  409,
  'Last active admin',
  z.object({ id: z.string().meta({ description: 'The admin who would have been the last' }) }).meta({
    example: { id: '0193a1b2-0000-7000-8000-000000000001' },
  }),
) {}

export { InvalidCredentials } from './contract.ts';
