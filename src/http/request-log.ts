import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { routeLabel } from './route-label.ts';

/** The module a route belongs to (`/api/v1/orders/...` → order, `/internal/v1/product/...` and `/api/v1/admin/events/product` → product), or kernel. */
const MODULE_OF = new Map<string, string>();

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

/**
 * One JSON line per request: method, route template, status, duration and
 * request id. Never bodies, query strings or headers, so no password or
 * token can reach the log this way.
 */
export const requestLog = (opts: { logger: Logger }): Middleware =>
  async function requestLog(ctx, next) {
    const started = performance.now();
    opts.logger.debug({ requestId: ctx.state.requestId as string, method: ctx.method }, 'request started');
    try {
      await next();
    } finally {
      const ms = Math.round((performance.now() - started) * 100) / 100;
      const route = routeLabel(ctx);
      const line = { requestId: ctx.state.requestId as string, module: moduleOf(route), method: ctx.method, route, status: ctx.status, ms };
      if (ctx.status >= 500) opts.logger.error(line, 'request');
      else opts.logger.info(line, 'request');
    }
  };
