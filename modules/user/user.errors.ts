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

export { InvalidCredentials } from './contract.ts';
