import type { Context } from 'koa';
import { QUEUES_PATH } from './queues-route.ts';

/** Every request to Bull Board (its page, scripts, polling API): one label, which the route panels leave out. */
export const QUEUES_ROUTE_LABEL = `${QUEUES_PATH}/*`;

/**
 * The route template a request matched (`/api/v1/users/:id`), never the raw
 * path, so labels stay bounded. Bull Board is a Koa app of its own whose
 * router would label its requests `/` or leave them unmatched: they all get
 * QUEUES_ROUTE_LABEL instead.
 */
export function routeLabel(ctx: Context): string {
  const path = ctx.path;
  if (
    path.startsWith(QUEUES_PATH) &&
    (path.length === QUEUES_PATH.length || path.charCodeAt(QUEUES_PATH.length) === 47)
  )
    return QUEUES_ROUTE_LABEL;
  const matched = (ctx as Context & { _matchedRoute?: string | RegExp })._matchedRoute;
  return typeof matched === 'string' ? matched : 'unmatched';
}

const MODULE_OF = new Map<string, string>();

/** The module a route belongs to (`/api/v1/orders/...` → order, `/internal/v1/product/...` and `/api/v1/admin/events/product` → product), or kernel. */
export function moduleOf(route: string): string {
  let module = MODULE_OF.get(route);
  if (module === undefined) {
    module = findModule(route);
    // Route templates are few; anything else is not remembered.
    if (route !== 'unmatched' && MODULE_OF.size < 1000) MODULE_OF.set(route, module);
  }
  return module;
}

function findModule(route: string): string {
  const internal = /^\/(?:internal\/v1|api\/v1\/admin\/events)\/([a-z]+)\b/.exec(route);
  if (internal) return internal[1]!;
  const pub = /^\/api\/v1\/(users|products|orders|notifications)\b/.exec(route);
  return pub ? pub[1]!.replace(/s$/, '') : 'kernel';
}
