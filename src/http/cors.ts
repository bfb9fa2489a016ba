import cors from '@koa/cors';
import type { Middleware } from 'koa';

/**
 * CORS for an allow-list of origins only. Credentials are allowed, so the
 * origin is always echoed exactly, never `*`; unknown origins get no CORS headers.
 */
export const corsAllowList = (opts: { origins: string[] }): Middleware => {
  const allowed = new Set(opts.origins);
  return cors({
    origin: (ctx) => {
      const origin = ctx.get('Origin');
      return allowed.has(origin) ? origin : '';
    },
    credentials: true,
    allowMethods: ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'],
    allowHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposeHeaders: ['X-Request-Id', 'Retry-After'],
    maxAge: 600,
  });
};
