import type { Router } from './router.ts';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AnyRouteDef } from '../../kit/route.ts';
import { UnsupportedMediaType, ValidationFailed, type FieldError } from '../../kit/errors.ts';
import { fieldErrors } from '../../kit/validation.ts';
import type { TokenVerifier } from '../auth/tokens.ts';
import { authorize } from './auth.ts';

/** A route definition together with the runtime its module handed over. */
export interface BoundRoute {
  def: AnyRouteDef;
  runtime: unknown;
}

const EMPTY = z.object({}).strict();

/**
 * Query strings reach the schema only as flat string values: a repeated key
 * (an array) is refused here, and bracket keys (`a[$ne]`) stay literal keys
 * that strict schemas refuse as unknown.
 */
function scalarQuery(query: Record<string, string | string[] | undefined>): {
  value: Record<string, string>;
  errors: FieldError[];
} {
  const value: Record<string, string> = {};
  const errors: FieldError[] = [];
  for (const [key, v] of Object.entries(query)) {
    if (Array.isArray(v)) errors.push({ path: key, message: 'Must be given once, as a single value' });
    else if (v !== undefined) value[key] = v;
  }
  return { value, errors };
}

function hasBody(ctx: Context): boolean {
  return Number(ctx.get('content-length') || 0) > 0 || ctx.get('transfer-encoding') !== '';
}

/** ES2024's String.prototype.isWellFormed, which Node 20 has (the project's lib setting is ES2023). */
type WellFormed = string & { isWellFormed(): boolean };

/**
 * Paths of strings PostgreSQL cannot store or JSON cannot carry faithfully:
 * a NUL character, or a lone UTF-16 surrogate (not valid Unicode). Refused
 * here, for every route, as field errors instead of failed queries.
 * Iterative (deeply nested bodies must not exhaust the stack) and bounded
 * (bodies are size-limited anyway).
 */
function badStrings(root: unknown, out: FieldError[]): void {
  const todo: [unknown, string][] = [[root, '']];
  for (let seen = 0; todo.length > 0 && seen < 200_000 && out.length < 20; seen++) {
    const [value, where] = todo.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\u0000')) out.push({ path: where, message: 'Must not contain NUL characters' });
      else if (!(value as WellFormed).isWellFormed())
        out.push({ path: where, message: 'Must be valid Unicode text (no lone surrogates)' });
    } else if (Array.isArray(value)) {
      value.forEach((v, i) => todo.push([v, where ? `${where}.${i}` : String(i)]));
    } else if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) todo.push([v, where ? `${where}.${k}` : k]);
    }
  }
}

const NOTHING = Object.freeze({});

/**
 * Params, query, headers and body through the route's schemas; every bad
 * field named in one 422. Parts that are absent and undeclared skip their
 * schema (an empty part of an empty schema has nothing to refuse).
 */
export function parseInput(ctx: Context, def: AnyRouteDef) {
  const errors: FieldError[] = [];
  const rawBody = (ctx.request as { body?: unknown }).body;
  const querystring = ctx.querystring;
  if (def.params) badStrings(ctx.params, errors);
  if (querystring) badStrings(ctx.query, errors);
  if (rawBody !== undefined) badStrings(rawBody, errors);
  if (errors.length > 0) throw new ValidationFailed('The request is not valid', { errors });
  const parse = (schema: z.ZodType | undefined, value: unknown, where: string) => {
    const result = (schema ?? EMPTY).safeParse(value);
    if (result.success) return result.data;
    // A rule about the whole object has no field path: name the part of the request instead.
    errors.push(...fieldErrors(result.error).map((e) => (e.path ? e : { ...e, path: where })));
    return undefined;
  };
  const params = def.params ? parse(def.params, ctx.params ?? {}, 'params') : NOTHING;
  const headers = def.headers ? parse(def.headers, ctx.headers, 'headers') : NOTHING;
  let query: unknown = NOTHING;
  if (querystring) {
    const q = scalarQuery(ctx.query);
    errors.push(...q.errors);
    query = q.errors.length ? undefined : parse(def.query, q.value, 'query');
  } else if (def.query) {
    query = parse(def.query, {}, 'query');
  }
  let body: unknown;
  if (def.body) {
    if (hasBody(ctx) && !ctx.is('application/json', '+json')) {
      throw new UnsupportedMediaType('The request body must be application/json');
    }
    body = parse(def.body, rawBody ?? {}, 'body');
  } else {
    const empty =
      rawBody === undefined || (typeof rawBody === 'object' && rawBody !== null && Object.keys(rawBody).length === 0);
    if (!empty) errors.push({ path: 'body', message: 'This route takes no request body' });
  }
  if (errors.length > 0) throw new ValidationFailed('The request is not valid', { errors });
  return { params, query, body, headers };
}

/** Mounts module and kernel routes: access check, input parsing, handler, response shaping. */
export function mountRoutes(router: Router, routes: BoundRoute[], verify: TokenVerifier): void {
  for (const { def, runtime } of routes) {
    router[def.method](def.path, async function handle(ctx: Context) {
      const principal = def.access === 'public' ? undefined : await authorize(ctx, def.access, verify);
      const input = parseInput(ctx, def);
      const result = await def.handler(
        { ...input, principal, requestId: ctx.state.requestId as string, ip: ctx.ip },
        runtime,
      );
      // Responses pass through their schema too: a field the schema does not name never leaves the process.
      ctx.status = def.status ?? 200;
      if (ctx.status === 204) return;
      ctx.body = def.response.parse(result);
    });
  }
}
