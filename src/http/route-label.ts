import type { Context } from 'koa';

/** The route template a request matched (`/api/v1/users/:id`), never the raw path, so labels stay bounded. */
export function routeLabel(ctx: Context): string {
  const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}
