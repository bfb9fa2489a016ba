import { z } from 'zod';
import { MAX_PASSWORD_BYTES, ROLES, fitsBcrypt, type TokenIssuer } from '../../kit/auth.ts';
import { ServiceUnavailable, TooManyRequests, Unauthorized } from '../../kit/errors.ts';
import { pageOf, pageQuery } from '../../kit/pagination.ts';
import { routesFor } from '../../kit/route.ts';
import { CONTROL_OR_FORMAT, carriesAddress, idText } from '../../kit/values.ts';
import { InvalidCredentials, UserDto, UserNotFound } from './contract.ts';
import { LastAdmin, UserAlreadyExists } from './user.errors.ts';
import type { UserService } from './user.service.ts';

export interface UserRuntime {
  service: UserService;
  tokens: TokenIssuer;
}

const route = routesFor<UserRuntime>();

const email = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email('Must be an e-mail address'))
  .transform((v) => v.toLowerCase())
  .meta({ example: 'siti@example.co.id' });

const password = z
  .string()
  .min(8, 'Must be at least 8 characters')
  .refine(fitsBcrypt, `Must be at most ${MAX_PASSWORD_BYTES} bytes`)
  .meta({ example: 'rahasia-sekali' });

export const RegisterBody = z
  .strictObject({
    email,
    username: z
      .string()
      .max(32, { error: 'Must be 3-32 characters of a-z, 0-9, _ . -', abort: true })
      .regex(/^[a-z0-9_.-]{3,32}$/, 'Must be 3-32 characters of a-z, 0-9, _ . -')
      // Shown to other people beside what the shop says: a username that is a domain reads as the shop's own address.
      .refine((v) => !carriesAddress(v), 'Must not be a web address or domain')
      .meta({ example: 'siti_rahma' }),
    password,
    fullName: z
      .string()
      .trim()
      // Bounded before any pattern reads it (abort: the checks below never see a longer one).
      .max(200, { abort: true })
      .min(1, 'Must not be empty')
      // It is written into mails to the address given: no line breaks, no bidi tricks, no address that would read as the shop's own.
      .refine((v) => !CONTROL_OR_FORMAT.test(v), 'Must not contain control or formatting characters')
      .refine((v) => !carriesAddress(v), 'Must not contain a web address, a domain or an e-mail address')
      .meta({ example: 'Siti Rahmawati' }),
  })
  .meta({
    id: 'RegisterRequest',
    example: {
      email: 'siti@example.co.id',
      username: 'siti_rahma',
      password: 'rahasia-sekali',
      fullName: 'Siti Rahmawati',
    },
  });

export const LoginBody = z
  .strictObject({
    email,
    // The same bound as at registration: a longer password cannot be anyone's, and bcrypt would ignore its tail.
    password: z
      .string()
      .min(1, 'Must not be empty')
      .refine(fitsBcrypt, `Must be at most ${MAX_PASSWORD_BYTES} bytes`)
      .meta({ example: 'rahasia-sekali' }),
  })
  .meta({ id: 'LoginRequest', example: { email: 'siti@example.co.id', password: 'rahasia-sekali' } });

const TokenResponse = z
  .object({
    accessToken: z.string(),
    tokenType: z.literal('bearer'),
    expiresIn: z.number().int().meta({ description: 'Seconds' }),
  })
  .meta({
    id: 'TokenResponse',
    example: {
      accessToken: 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRva28tMSJ9.eyJzdWIiOiIwMTkzYTFiMiJ9.c2lnbmF0dXJl',
      tokenType: 'bearer',
      expiresIn: 900,
    },
  });

const VerifyResponse = z
  .object({
    claims: z
      .object({
        sub: z.string(),
        role: z.string(),
        iat: z.number(),
        exp: z.number(),
        iss: z.string(),
        aud: z.union([z.string(), z.array(z.string())]),
      })
      .meta({
        example: {
          sub: '0193a1b2-0000-7000-8000-000000000001',
          role: 'customer',
          iat: 1796285700,
          exp: 1796286600,
          iss: 'toko',
          aud: 'toko-api',
        },
      }),
    user: UserDto,
  })
  .meta({ id: 'VerifyResponse' });

const idParams = z.strictObject({ id: idText() });

export const userRoutes = [
  route({
    method: 'post',
    operationId: 'registerUser',
    path: '/api/v1/users/register',
    summary: 'Register a customer account',
    tags: ['users'],
    access: 'public',
    body: RegisterBody,
    status: 201,
    response: UserDto,
    problems: [UserAlreadyExists, TooManyRequests, ServiceUnavailable],
    handler: ({ body, ip }, { service }) => service.register(body, ip),
  }),
  route({
    method: 'post',
    operationId: 'logIn',
    path: '/api/v1/users/login',
    summary: 'Exchange e-mail and password for an access token',
    description:
      'The same 401 for an unknown e-mail and a wrong password. Repeated failures answer 429 with Retry-After.',
    tags: ['users'],
    access: 'public',
    body: LoginBody,
    response: TokenResponse,
    problems: [InvalidCredentials, TooManyRequests, ServiceUnavailable],
    handler: async ({ body, ip }, { service }) => ({
      ...(await service.login(body, ip)),
      tokenType: 'bearer' as const,
    }),
  }),
  route({
    method: 'get',
    operationId: 'getMe',
    path: '/api/v1/users/me',
    summary: 'The caller’s own profile',
    tags: ['users'],
    access: 'user',
    response: UserDto,
    problems: [UserNotFound],
    handler: ({ principal }, { service }) => service.get(principal!.userId),
  }),
  route({
    method: 'post',
    operationId: 'verifyToken',
    path: '/api/v1/users/verify',
    summary: 'Check a bearer token: its claims and its user',
    tags: ['users'],
    access: 'user',
    response: VerifyResponse,
    handler: async ({ principal }, { service }) => {
      try {
        return { claims: principal!.claims, user: await service.get(principal!.userId) };
      } catch (err) {
        // A token whose user is gone is not a valid token.
        if (err instanceof UserNotFound) throw new Unauthorized('The token’s user no longer exists');
        throw err;
      }
    },
  }),
  route({
    method: 'get',
    operationId: 'listUsers',
    path: '/api/v1/users',
    summary: 'List users (admin)',
    tags: ['users'],
    access: 'admin',
    query: z.strictObject(pageQuery),
    response: pageOf(UserDto).meta({ id: 'UserPage' }),
    handler: ({ query }, { service }) => service.list(query),
  }),
  route({
    method: 'get',
    operationId: 'getUser',
    path: '/api/v1/users/:id',
    summary: 'One user (yourself, or anyone for an admin)',
    description: 'Another user’s id answers 404, exactly like an id that does not exist.',
    tags: ['users'],
    access: 'user',
    params: idParams,
    response: UserDto,
    problems: [UserNotFound],
    handler: ({ params, principal }, { service }) => {
      if (principal!.role !== 'admin' && principal!.userId !== params.id) {
        throw new UserNotFound(`No user with id ${params.id}`, { id: params.id });
      }
      return service.get(params.id);
    },
  }),
  route({
    method: 'patch',
    operationId: 'updateUser',
    path: '/api/v1/users/:id',
    summary: 'Deactivate or reactivate a user, or change their role (admin)',
    description:
      'Not on your own account (422), and never the last active admin (409 USER.LAST_ADMIN). A deactivated user cannot log in, and their tokens, like a demoted admin’s admin rights, stop working on every service within ACCOUNT_CHECK_TTL_MS (30 s by default).',
    tags: ['users'],
    access: 'admin',
    params: idParams,
    body: z
      .strictObject({ isActive: z.boolean().optional(), role: z.enum(ROLES).optional() })
      .refine((b) => b.isActive !== undefined || b.role !== undefined, 'Give isActive, role or both')
      .meta({ id: 'UserAccessChange', example: { isActive: false } }),
    response: UserDto,
    problems: [UserNotFound, LastAdmin],
    handler: ({ params, body, principal }, { service }) => service.setAccess(params.id, body, principal!.userId),
  }),
  route({
    method: 'get',
    operationId: 'getJwks',
    path: '/.well-known/jwks.json',
    summary: 'Public keys that verify toko access tokens',
    tags: ['users'],
    access: 'public',
    response: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).meta({
      id: 'Jwks',
      example: {
        keys: [{ kty: 'RSA', kid: 'toko-1', use: 'sig', alg: 'RS256', n: '0vx7agoebGcQSuuPiLJXZpt…', e: 'AQAB' }],
      },
    }),
    handler: async (_input, { tokens }) => tokens.jwks(),
  }),
];
