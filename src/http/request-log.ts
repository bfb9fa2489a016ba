import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { moduleOf, routeLabel } from './route-label.ts';

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
