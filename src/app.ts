import Koa, { type Middleware } from 'koa';
import type { Logger } from 'pino';
import type { TokenVerifier } from './auth/tokens.ts';
import type { AnyRouteDef } from '../kit/route.ts';
import { jsonBody } from './http/body.ts';
import { clientAddresses } from './http/client-address.ts';
import { corsAllowList } from './http/cors.ts';
import { DOC_ROUTES, mountDocs } from './http/docs.ts';
import { requestEnvelope } from './http/envelope.ts';
import { securityHeaders } from './http/security-headers.ts';
import { METRICS_ROUTE, mountMetrics, type Metrics } from './http/metrics.ts';
import { buildOpenApiDocument } from './http/openapi.ts';
import { QUEUES_ROUTE } from './http/queues-route.ts';
import { traceRequests } from './http/tracing.ts';
import { tracingEnabled } from '../kit/tracing.ts';
import { mountRoutes, type BoundRoute } from './http/routes.ts';
import { Router } from './http/router.ts';

export interface AppOptions {
  logger: Logger;
  metrics: Metrics;
  verify: TokenVerifier;
  /** Routes this process serves, with their runtimes. */
  routes: BoundRoute[];
  /** Every public route of every module, hosted here or not, for the OpenAPI document. */
  documentedRoutes: AnyRouteDef[];
  corsOrigins: string[];
  bodyLimit: string;
  /** The proxies whose X-Forwarded-For is believed (addresses, CIDR ranges); empty: the socket's address stands. */
  trustedProxies: string[];
  /** Where /metrics is served: on the public port (false when it has a port of its own), and the bearer token that opens it to other machines. */
  metricsAccess: { onPublicPort: boolean; token?: string };
  version: string;
  /** Mounted after CORS and before body parsing (Bull Board parses its own bodies). */
  extraMiddleware?: Middleware[];
  /** Mounted after body parsing, before the public routes (the internal contract routes). */
  afterBodyMiddleware?: Middleware[];
}

/** The Koa app: middleware in a fixed order, then the routes. No I/O happens here. */
export function createApp(o: AppOptions): { app: Koa; router: Router } {
  // Koa's own proxy mode stays off: it would believe X-Forwarded-For (and -Host, -Proto) from any peer.
  const app = new Koa({ proxy: false });
  // Koa would print errors to stderr; the problem middleware already logs what matters.
  app.silent = true;
  const router = new Router();

  let document: unknown;
  mountDocs(
    router,
    () =>
      (document ??= buildOpenApiDocument({
        routes: o.documentedRoutes,
        meta: [...DOC_ROUTES, METRICS_ROUTE, QUEUES_ROUTE],
        version: o.version,
      })),
  );
  if (o.metricsAccess.onPublicPort) mountMetrics(router, o.metrics, { token: o.metricsAccess.token });
  mountRoutes(router, o.routes, o.verify);

  // Only entries our own proxies wrote count: a client's X-Forwarded-For is never believed.
  app.use(clientAddresses({ trustedProxies: o.trustedProxies }));
  // A span per request only when tracing is on: off, the middleware is not even mounted.
  if (tracingEnabled()) app.use(traceRequests());
  app.use(requestEnvelope({ logger: o.logger, metrics: o.metrics }));
  app.use(securityHeaders());
  // With no allowed origin there is nothing for CORS to say: the middleware is not mounted.
  if (o.corsOrigins.length > 0) app.use(corsAllowList({ origins: o.corsOrigins }));
  for (const m of o.extraMiddleware ?? []) app.use(m);
  app.use(jsonBody({ limit: o.bodyLimit }));
  for (const m of o.afterBodyMiddleware ?? []) app.use(m);
  app.use(router.middleware());
  return { app, router };
}
