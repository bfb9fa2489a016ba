import FindMyWay from 'find-my-way';
import type { Context, Middleware, Next } from 'koa';
import { MethodNotAllowed } from '../../kit/errors.ts';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
const METHODS: Method[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export type Handler = (ctx: Context, next: Next) => unknown;

interface Stored {
  path: string;
  handler: Handler;
}

/**
 * Routes requests to handlers by method and path template (`/api/v1/users/:id`)
 * with find-my-way's radix tree, the router Fastify uses: one lookup per
 * request, whatever the number of routes (the profile showed a linear
 * router costing more than any middleware). Sets `ctx.params` and the matched
 * template (for log and metric labels). A path served with other methods
 * answers 405 with `Allow` (OPTIONS: 204 with `Allow`); an unknown path falls
 * through, and the app answers 404.
 */
export class Router {
  private readonly tree = FindMyWay({ ignoreTrailingSlash: true, caseSensitive: true, maxParamLength: 200 });
  /** Every mounted route, for introspection (the OpenAPI coverage test). */
  readonly mounted: { method: Method; path: string }[] = [];

  private on(method: Method, path: string, handler: Handler): void {
    const stored: Stored = { path, handler };
    this.tree.on(method, path, () => undefined, stored);
    this.mounted.push({ method, path });
  }

  get(path: string, handler: Handler): void {
    this.on('GET', path, handler);
  }

  post(path: string, handler: Handler): void {
    this.on('POST', path, handler);
  }

  put(path: string, handler: Handler): void {
    this.on('PUT', path, handler);
  }

  patch(path: string, handler: Handler): void {
    this.on('PATCH', path, handler);
  }

  delete(path: string, handler: Handler): void {
    this.on('DELETE', path, handler);
  }

  private find(method: string, path: string) {
    try {
      return this.tree.find(method as Method, path);
    } catch {
      // A path find-my-way cannot decode (bad percent-encoding) names nothing here.
      return null;
    }
  }

  /** The methods `path` is served with. */
  allowed(path: string): string[] {
    const methods: string[] = METHODS.filter((m) => this.find(m, path));
    if (methods.includes('GET')) methods.push('HEAD');
    return methods;
  }

  middleware(): Middleware {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- a named function (the ladder reads middleware names), not an arrow
    const self = this;
    return function router(ctx, next) {
      const found = self.find(ctx.method, ctx.path);
      if (found) {
        const stored = found.store as Stored;
        ctx.params = found.params as Record<string, string>;
        (ctx as Context & { _matchedRoute?: string })._matchedRoute = stored.path;
        return stored.handler(ctx, next);
      }
      const allowed = self.allowed(ctx.path);
      if (allowed.length === 0) return next();
      ctx.set('Allow', [...allowed, 'OPTIONS'].join(', '));
      if (ctx.method === 'OPTIONS') {
        ctx.status = 204;
        return undefined;
      }
      throw new MethodNotAllowed(`This resource allows ${allowed.join(', ')}`);
    };
  }
}
