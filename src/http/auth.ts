import type { Context } from 'koa';
import type { Principal } from '../../kit/auth.ts';
import { Forbidden, Unauthorized } from '../../kit/errors.ts';
import type { Access } from '../../kit/route.ts';
import type { TokenVerifier } from '../auth/tokens.ts';

/** Reads `Authorization: Bearer <token>` and verifies it locally; no call to the user module. */
export async function authenticate(ctx: Context, verify: TokenVerifier): Promise<Principal> {
  const header = ctx.get('Authorization');
  const match = /^Bearer\s+([A-Za-z0-9\-_.=]+)$/i.exec(header);
  if (!match)
    throw new Unauthorized(header ? 'The Authorization header must be "Bearer <token>"' : 'A bearer token is required');
  const claims = await verify(match[1]!);
  return { userId: claims.sub, role: claims.role, claims };
}

/** 401 without a valid token, 403 when the token's role may not use the route. */
export async function authorize(ctx: Context, access: Access, verify: TokenVerifier): Promise<Principal | undefined> {
  if (access === 'public') return undefined;
  const principal = await authenticate(ctx, verify);
  if (access === 'admin' && principal.role !== 'admin') throw new Forbidden('This route is for administrators');
  return principal;
}
