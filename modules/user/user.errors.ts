import { defineError } from '../../src/kit/errors.ts';

/** 409; `field` names which of email or username is taken. */
export class UserAlreadyExists extends defineError('USER.ALREADY_EXISTS', 409, 'User already exists') {}

export { InvalidCredentials } from './contract.ts';
