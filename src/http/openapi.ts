import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import {
  Forbidden,
  MalformedJson,
  PayloadTooLarge,
  PROBLEM_TYPE_PREFIX,
  Unauthorized,
  UnsupportedMediaType,
  ValidationFailed,
  type ErrorClass,
} from '../../kit/errors.ts';
import type { AnyRouteDef } from '../../kit/route.ts';

/** A kernel route that is not JSON (metrics, docs pages): documented by hand. */
export interface MetaRoute {
  method: 'get';
  path: string;
  operationId: string;
  summary: string;
  contentType: string;
  /** Who may call it, as OpenAPI security requirements (`{}` in the list: also without credentials). */
  security?: Record<string, string[]>[];
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Malformed JSON',
  401: 'No token, or a token that is not valid',
  403: 'Your role may not use this route',
  404: 'Not found (or not yours to see)',
  409: 'Conflicts with what is stored',
  413: 'Body too large',
  415: 'Body is not JSON',
  422: 'Validation failed, one entry per bad field',
  429: 'Too many attempts; see Retry-After',
  503: 'A dependency is not available; see Retry-After',
};

/** Stands in for a request id in examples. */
const EXAMPLE_REQUEST_ID = 'a3f1c2d4-5b6e-4f70-8a91-b2c3d4e5f607';

/** `/api/v1/users/:id` → `/api/v1/users/{id}` */
export const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

const problemSchemas = new Map<string, z.ZodObject>();
const STANDARD_FIELDS = ['type', 'title', 'status', 'detail', 'code', 'instance', 'requestId'];

/**
 * The problem document of one error class: RFC 9457's fields, toko's `code`
 * and `requestId`, and the extension fields the class declares. One schema
 * per code (`Problem.ORDER.OUT_OF_STOCK` in the document).
 */
export function problemSchemaOf(error: ErrorClass): z.ZodObject {
  let schema = problemSchemas.get(error.code);
  if (!schema) {
    // The standard fields are written after the extension fields, so an extension by one of their names would never reach the caller.
    const clash = Object.keys(error.extras?.shape ?? {}).filter((k) => STANDARD_FIELDS.includes(k));
    if (clash.length > 0)
      throw new Error(`${error.code}: extension fields ${clash.join(', ')} clash with the problem document's own`);
    schema = z
      .object({
        type: z.literal(`${PROBLEM_TYPE_PREFIX}${error.code}`),
        title: z.string(),
        status: z.literal(error.status),
        detail: z.string().meta({ description: 'What happened to this request, in words' }),
        code: z.literal(error.code),
        instance: z.string().meta({ description: 'The request path' }),
        requestId: z
          .string()
          .meta({ description: 'Also the x-request-id header, and in every log line of the request' }),
        ...(error.extras?.shape ?? {}),
      })
      .meta({ id: `Problem.${error.code}`, description: `${error.title} (RFC 9457 problem document)` });
    problemSchemas.set(error.code, schema);
  }
  return schema;
}

/** A problem document as toko would send it for `error` on `path`. */
export function problemExample(error: ErrorClass, path: string): Record<string, unknown> {
  const extras = (error.extras ? exampleOf(error.extras) : {}) as Record<string, unknown>;
  return {
    type: `${PROBLEM_TYPE_PREFIX}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.title,
    code: error.code,
    instance: path.replace(/:([A-Za-z0-9_]+)/g, (_, name: string) =>
      String(extras[name] ?? '0193a1b2-7c4d-7e8f-9a0b-1c2d3e4f5a6b'),
    ),
    requestId: EXAMPLE_REQUEST_ID,
    ...extras,
  };
}

type Def = {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  values?: unknown[];
  entries?: Record<string, unknown>;
};

/**
 * An example of what `schema` describes: its own `example` when it declares
 * one, else one built from its parts' (an object from its fields', a list of
 * one item). Undefined when some required part declares none.
 */
export function exampleOf(schema: z.ZodType): unknown {
  const declared = (z.globalRegistry.get(schema) as { example?: unknown } | undefined)?.example;
  if (declared !== undefined) return declared;
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  switch (def.type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [key, field] of Object.entries(def.shape!)) {
        const value = exampleOf(field);
        const optional = (field as unknown as { _zod: { optin?: string } })._zod.optin === 'optional';
        if (value === undefined && !optional) return undefined;
        if (value !== undefined) out[key] = value;
      }
      return out;
    }
    case 'array': {
      const item = exampleOf(def.element!);
      return item === undefined ? undefined : [item];
    }
    case 'optional':
    case 'default':
    case 'readonly':
      return exampleOf(def.innerType!);
    case 'nullable':
      return exampleOf(def.innerType!) ?? null;
    case 'pipe':
      return exampleOf(def.in!);
    case 'literal':
      return def.values![0];
    case 'enum':
      return Object.values(def.entries!)[0];
    default:
      return undefined;
  }
}

/** Every error a route can answer with: its own, and the kernel's refusals its access and inputs allow. */
function problemsOf(def: AnyRouteDef): ErrorClass[] {
  const all: ErrorClass[] = [...(def.problems ?? [])];
  if (def.access !== 'public') all.push(Unauthorized as unknown as ErrorClass);
  if (def.access === 'admin') all.push(Forbidden);
  if (def.params || def.query || def.body || def.headers) all.push(ValidationFailed as unknown as ErrorClass);
  if (def.body) all.push(MalformedJson, PayloadTooLarge, UnsupportedMediaType);
  return [...new Map(all.map((e) => [e.code, e])).values()];
}

/** One response per status: the schema of each code it may carry, and an example of each. */
function problemResponses(def: AnyRouteDef) {
  const byStatus = new Map<number, ErrorClass[]>();
  for (const e of problemsOf(def)) byStatus.set(e.status, [...(byStatus.get(e.status) ?? []), e]);
  return Object.fromEntries(
    [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([status, errors]) => {
        const schemas = errors.map(problemSchemaOf);
        const schema =
          schemas.length === 1
            ? schemas[0]!
            : z.discriminatedUnion('code', schemas as [z.ZodObject, z.ZodObject, ...z.ZodObject[]]);
        const examples = Object.fromEntries(
          errors.map((e) => [e.code, { summary: e.title, value: problemExample(e, def.path) }]),
        );
        return [
          status,
          {
            description: STATUS_TEXT[status] ?? errors.map((e) => e.title).join('; '),
            content: { 'application/problem+json': { schema, examples } },
          },
        ];
      }),
  );
}

export function buildOpenApiDocument(opts: { routes: AnyRouteDef[]; meta: MetaRoute[]; version: string }) {
  const registry = new OpenAPIRegistry();
  registerSecuritySchemes(registry);
  for (const def of opts.routes) registerRoute(registry, def);
  for (const m of opts.meta) {
    registry.registerPath({
      method: m.method,
      path: m.path,
      operationId: m.operationId,
      summary: m.summary,
      tags: ['meta'],
      security: m.security ?? [],
      responses: { 200: { description: 'Success', content: { [m.contentType]: { schema: z.string() } } } },
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'toko API',
      version: opts.version,
      description:
        'Public API of toko, the same whichever process answers. Errors are application/problem+json (RFC 9457).',
    },
    servers: [{ url: '/' }],
  });
}

/** How callers prove who they are: access tokens, basic sign-in (Bull Board), the metrics token. */
function registerSecuritySchemes(registry: OpenAPIRegistry): void {
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'RS256 access token from POST /api/v1/users/login',
  });
  registry.registerComponent('securitySchemes', 'basicAuth', {
    type: 'http',
    scheme: 'basic',
    description:
      "Any administrator's e-mail and password (Bull Board, so a browser can sign in), under the login throttle",
  });
  registry.registerComponent('securitySchemes', 'metricsToken', {
    type: 'http',
    scheme: 'bearer',
    description: 'METRICS_TOKEN; callers on the same machine need none',
  });
}

/** One public route: its request schemas, its success response with an example, and its problem responses. */
function registerRoute(registry: OpenAPIRegistry, def: AnyRouteDef): void {
  registry.registerPath({
    method: def.method,
    path: toOpenApiPath(def.path),
    operationId: def.operationId,
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
        def.status === 204
          ? { description: 'Done; no content' }
          : {
              description: 'Success',
              content: { 'application/json': { schema: def.response, example: exampleOf(def.response) } },
            },
      ...problemResponses(def),
    },
  });
}
