import { defineError } from '../../src/kit/errors.ts';

/** 409; `field` names which of email or username is taken. */
export class UserAlreadyExists extends defineError('USER.ALREADY_EXISTS', 409, 'User already exists') {}

/** The same 401 for an unknown e-mail, a wrong password and a disabled account. */
export class InvalidCredentials extends defineError('USER.INVALID_CREDENTIALS', 401, 'Invalid credentials') {}
