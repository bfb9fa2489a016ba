import Router from '@koa/router';
import type { Middleware } from 'koa';
import type { ContractDef, ImplementationOf } from '../../kit/contract.ts';
import { Unauthorized } from '../../kit/errors.ts';
import { parseOrThrow } from '../../kit/validation.ts';
import { SERVICE_KEY_HEADER, sameKey } from './service-key.ts';

export const INTERNAL_PREFIX = '/internal/v1';

/**
 * Serves a contract at `POST /internal/v1/<module>/<method>`, generically from
 * its definition: the input and output go through the contract's schemas,
 * typed errors leave as problem documents (the app's error middleware), and
 * every call needs the shared service key. Never routed by the gateway.
 */
export function serveContract<C extends ContractDef>(
  contract: C,
  implementation: ImplementationOf<C>,
  opts: { serviceKey: string },
): Middleware {
  if (opts.serviceKey.length < 16) throw new Error('serviceKey must be at least 16 characters');
  const prefix = `${INTERNAL_PREFIX}/${contract.name}`;
  const router = new Router({ prefix });
  for (const [name, method] of Object.entries(contract.methods)) {
    const impl = (implementation as Record<string, (input: unknown) => Promise<unknown>>)[name]!;
    router.post(`/${name}`, async function internalCall(ctx) {
      if (!sameKey(ctx.get(SERVICE_KEY_HEADER) || undefined, opts.serviceKey))
        throw new Unauthorized('A service key is required');
      const input = parseOrThrow(method.input, (ctx.request as { body?: unknown }).body ?? {});
      ctx.body = method.output.parse(await impl(input));
    });
  }
  const routes = router.routes() as unknown as Middleware;
  // Public requests pass every module's internal router: a prefix test sends them on at once.
  return (ctx, next) => (ctx.path.startsWith(`${prefix}/`) ? routes(ctx, next) : next());
}
