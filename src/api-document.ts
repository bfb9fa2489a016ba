import pkg from '../package.json' with { type: 'json' };
import { adminEventRoutes } from './http/admin-events.ts';
import { DOC_ROUTES } from './http/docs.ts';
import { healthRoutes } from './http/health.ts';
import { METRICS_ROUTE } from './http/metrics.ts';
import { buildOpenApiDocument } from './http/openapi.ts';
import { QUEUES_ROUTE } from './http/queues-route.ts';
import type { AnyRouteDef } from '../kit/route.ts';
import { ALL_MODULE_ROUTES, PRODUCERS } from './registry.ts';

/** Every public route of every module, wherever it is hosted: what `/openapi.json` documents in every process. */
export const documentedRoutes = (): AnyRouteDef[] => [
  ...healthRoutes,
  ...ALL_MODULE_ROUTES,
  ...PRODUCERS.flatMap((m) => adminEventRoutes(m)),
];

/** The OpenAPI document every toko process serves at /openapi.json (and `npm run generate:client` reads). */
export const apiDocument = (version = pkg.version) =>
  buildOpenApiDocument({ routes: documentedRoutes(), meta: [...DOC_ROUTES, METRICS_ROUTE, QUEUES_ROUTE], version });
