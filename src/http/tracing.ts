import type { Middleware } from 'koa';
import { SpanKind, contextFrom, inSpan, markFailed } from '../../kit/tracing.ts';
import { routeLabel } from './route-label.ts';

/**
 * A server span per request, continuing the caller's trace when it sent a
 * `traceparent` header (the gateway passes it through; the HTTP adapter sends
 * it on internal calls). Named by route template once routing is done, so
 * span names stay few. A no-op while tracing is off.
 */
export const traceRequests = (): Middleware =>
  async function traceRequests(ctx, next) {
    await inSpan(
      ctx.method,
      {
        kind: SpanKind.SERVER,
        parent: contextFrom(ctx.headers),
        attributes: { 'http.request.method': ctx.method, 'url.path': ctx.path },
      },
      async (span) => {
        try {
          await next();
        } finally {
          const route = routeLabel(ctx);
          span.updateName(`${ctx.method} ${route}`);
          span.setAttribute('http.route', route);
          span.setAttribute('http.response.status_code', ctx.status);
          if (ctx.status >= 500) markFailed(span, `answered ${ctx.status}`);
        }
      },
    );
  };
