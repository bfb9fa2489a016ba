import type { z } from 'zod';
import type { Principal } from './auth.ts';
import type { ErrorClass } from './errors.ts';

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';
export type Access = 'public' | 'user' | 'admin';

type AnyObject = z.ZodType<Record<string, unknown>>;

export interface RouteInput<P, Q, B, H = Record<string, unknown>> {
  params: P;
  query: Q;
  body: B;
  /** The headers the route declares, parsed (names lower-case). */
  headers: H;
  /** Set on every route whose access is not `public`. */
  principal: Principal | undefined;
  requestId: string;
  ip: string;
}

/**
 * A public HTTP route, declared once: the kernel validates requests and
 * responses with these schemas and builds the OpenAPI document from them.
 * `R` is what the module hands its handlers (its service, usually).
 */
export interface RouteDef<
  R,
  P extends AnyObject = AnyObject,
  Q extends AnyObject = AnyObject,
  B extends z.ZodType = z.ZodType,
  H extends AnyObject = AnyObject,
> {
  method: HttpMethod;
  /** Unique across the API, in camelCase (`placeOrder`): generated clients name their methods after it. */
  operationId: string;
  /** Koa-style path: `/api/v1/users/:id`. */
  path: string;
  summary: string;
  description?: string;
  tags?: string[];
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** Request headers the route reads (lower-case names); other headers are ignored. */
  headers?: H;
  /** Success status; 200 unless given. */
  status?: number;
  response: z.ZodType;
  /**
   * The errors this route can answer with, for the docs: each becomes an
   * example of its status's problem response, with its extension fields.
   * Refusals the kernel gives (401, 403, 400/413/415/422 on input) are added from `access` and the schemas.
   */
  problems?: ErrorClass[];
  handler(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>, z.output<H>>, runtime: R): Promise<unknown>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRouteDef<R = any> = RouteDef<R, any, any, any, any>;

/** Returns a typed route factory for a module whose handlers receive `R`. */
export function routesFor<R>() {
  return <P extends AnyObject, Q extends AnyObject, B extends z.ZodType, H extends AnyObject>(
    def: RouteDef<R, P, Q, B, H>,
  ): AnyRouteDef<R> => def;
}
