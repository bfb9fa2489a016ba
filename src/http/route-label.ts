import type { Context } from 'koa';
import { ROUTE_MODULES } from '../registry.ts';
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

/**
 * The module a route belongs to, or kernel (Bull Board, docs, health,
 * metrics): a public route by its module's definitions (`/api/v1/orders/:id`
 * → order), a contract's internal route and an outbox's admin route by the
 * module they name (`/internal/v1/product/...`, `/api/v1/admin/events/product`).
 */
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
  const declared = ROUTE_MODULES.get(route);
  if (declared) return declared;
  const named = /^\/(?:internal\/v1|api\/v1\/admin\/events)\/([a-z][a-z0-9_]*)\b/.exec(route);
  return named ? named[1]! : 'kernel';
}
