import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { AnyRouteDef } from '../kit/route.ts';

/** A kernel route that is not JSON (metrics, docs pages): documented by hand. */
export interface MetaRoute {
  method: 'get';
  path: string;
  summary: string;
  contentType: string;
}

const problemSchema = z
  .object({
    type: z.string().meta({ example: 'urn:toko:problem:USER.NOT_FOUND' }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().meta({ example: 'USER.NOT_FOUND' }),
    instance: z.string(),
    requestId: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: 'Problem', description: 'RFC 9457 problem document' });

const PROBLEM_TEXT: Record<number, string> = {
  400: 'Malformed JSON',
  401: 'No token, or a token that is not valid',
  403: 'Your role may not use this route',
  404: 'Not found (or not yours to see)',
  409: 'Conflicts with what is stored',
  413: 'Body too large',
  415: 'Body is not JSON',
  422: 'Validation failed, one entry per bad field',
  429: 'Too many attempts; see Retry-After',
  503: 'A dependency is not available',
};

/** `/api/v1/users/:id` → `/api/v1/users/{id}` */
export const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function problemStatuses(def: AnyRouteDef): number[] {
  const s = new Set<number>(def.problems ?? []);
  if (def.access !== 'public') s.add(401);
  if (def.access === 'admin') s.add(403);
  if (def.params || def.query || def.body || def.headers) s.add(422);
  if (def.body) [400, 413, 415].forEach((n) => s.add(n));
  return [...s].sort();
}

export function buildOpenApiDocument(opts: { routes: AnyRouteDef[]; meta: MetaRoute[]; version: string }) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'RS256 access token from POST /api/v1/users/login',
  });
  for (const def of opts.routes) {
    const problems = Object.fromEntries(
      problemStatuses(def).map((status) => [
        status,
        { description: PROBLEM_TEXT[status] ?? 'Problem', content: { 'application/problem+json': { schema: problemSchema } } },
      ]),
    );
    registry.registerPath({
      method: def.method,
      path: toOpenApiPath(def.path),
      summary: def.summary,
      description: def.description,
      tags: def.tags,
      security: def.access === 'public' ? [] : [{ bearerAuth: [] }],
      request: {
        params: def.params,
        query: def.query,
        headers: def.headers,
        body: def.body ? { required: true, content: { 'application/json': { schema: def.body } } } : undefined,
      },
      responses: {
        [def.status ?? 200]:
          def.status === 204 ? { description: 'Done; no content' } : { description: 'Success', content: { 'application/json': { schema: def.response } } },
        ...problems,
      },
    });
  }
  for (const m of opts.meta) {
    registry.registerPath({
      method: m.method,
      path: m.path,
      summary: m.summary,
      tags: ['meta'],
      responses: { 200: { description: 'Success', content: { [m.contentType]: { schema: z.string() } } } },
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'toko API',
      version: opts.version,
      description: 'Public API of toko, the same whichever process answers. Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/' }],
  });
}
