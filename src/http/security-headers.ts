import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet, { type HelmetOptions } from 'helmet';
import type { Middleware } from 'koa';
import { QUEUES_PATH } from './queues-route.ts';

/** The HTML pages this process serves: Swagger UI, Redoc, Bull Board. Everything else is JSON. */
const isPage = (path: string) =>
  path === '/docs' ||
  path === '/redoc' ||
  path.startsWith('/docs/') ||
  path === QUEUES_PATH ||
  path.startsWith(`${QUEUES_PATH}/`);

const COMMON: HelmetOptions = { frameguard: { action: 'deny' } };

/** JSON answers may load nothing and be framed by nobody. */
const API_CSP = { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } };

/** The docs pages and Bull Board load only this origin's scripts; their styles are injected at run time, Redoc's search runs in a blob: worker. */
const PAGE_CSP = {
  useDefaults: false,
  directives: {
    defaultSrc: ["'self'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    fontSrc: ["'self'", 'data:'],
    workerSrc: ["'self'", 'blob:'],
    connectSrc: ["'self'"],
    objectSrc: ["'none'"],
    baseUri: ["'self'"],
    formAction: ["'self'"],
    frameAncestors: ["'none'"],
  },
};

/** The headers helmet sets with these options: they are the same for every response, so helmet runs once, here. */
function headersOf(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader: (name: string, value: string | string[]) =>
      void (headers[name] = Array.isArray(value) ? value.join(', ') : String(value)),
    removeHeader: (name: string) => void delete headers[name],
  } as unknown as ServerResponse;
  helmet(options)({} as IncomingMessage, res, (err?: unknown) => {
    if (err) throw err;
  });
  return Object.freeze(headers) as Record<string, string>;
}

/** The headers of every JSON answer; the gateway sends the same with answers of its own (scripts/generate/nginx.ts). */
export const jsonAnswerHeaders = (): Record<string, string> => headersOf({ ...COMMON, contentSecurityPolicy: API_CSP });

/**
 * helmet's headers on every response (nosniff, `X-Frame-Options: DENY`,
 * `Referrer-Policy: no-referrer`, HSTS, the cross-origin policies) with a
 * Content-Security-Policy for JSON and another for the HTML pages.
 */
export function securityHeaders(): Middleware {
  const api = jsonAnswerHeaders();
  const page = headersOf({ ...COMMON, contentSecurityPolicy: PAGE_CSP });
  return function securityHeaders(ctx, next) {
    ctx.set(isPage(ctx.path) ? page : api);
    return next();
  };
}
