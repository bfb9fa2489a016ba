import { createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Context, Middleware } from 'koa';
import { LRUCache } from 'lru-cache';
import compose from 'koa-compose';
import type { TokenVerifier } from '../auth/tokens.ts';
import { AppError, Forbidden, Unauthorized, ValidationFailed } from '../../kit/errors.ts';
import { authorize } from './auth.ts';
import { QUEUES_PATH } from './queues-route.ts';

/** 401 that also invites a browser to ask for basic credentials. */
class BoardUnauthorized extends AppError {
  constructor() {
    super({
      code: 'AUTH.UNAUTHORIZED',
      status: 401,
      title: 'Unauthorized',
      detail: 'Administrator credentials are required',
      headers: { 'WWW-Authenticate': 'Basic realm="toko admin", charset="UTF-8"' },
    });
  }
}

/** Bull Board's page links Google Fonts; without the link it uses the system's sans-serif and loads nothing from outside. */
const OUTSIDE_STYLESHEET = /<link[^>]+href="https?:\/\/[^"]*"[^>]*rel="stylesheet"[^>]*>\s*/g;

/**
 * The page as a browser should get it: no Google Fonts link, and an absolute
 * `<base href>` without credentials. Opened as `https://admin:pw@host/admin/queues`,
 * the relative base would carry the credentials into every API URL the page
 * builds, which fetch() refuses: the board would hang on "Loading".
 */
const pageForBrowsers: Middleware = async (ctx, next) => {
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body
      .replace(OUTSIDE_STYLESHEET, '')
      .replace(/<base href="(\/[^"]*)"/, (_, p: string) => `<base href="${ctx.protocol}://${ctx.host}${p}"`);
  }
};

/** Checks an e-mail and password under the login throttle (the identity capability's `signIn`); rejects with Unauthorized when they are wrong. */
export type SignIn = (email: string, password: string, client: string) => Promise<{ role: string }>;

/** Whether a request that changes something comes from elsewhere: another site's Origin, or a body a form could send. */
function crossSite(ctx: Context): string | undefined {
  if (ctx.method === 'GET' || ctx.method === 'HEAD' || ctx.method === 'OPTIONS') return undefined;
  const origin = ctx.get('Origin');
  if (origin && origin !== 'null') {
    try {
      if (new URL(origin).host !== ctx.host) return 'a request from another site';
    } catch {
      return 'a request from another site';
    }
  } else if (origin === 'null') return 'a request from an opaque origin';
  if (ctx.request.length && !ctx.is('application/json')) return 'a body that is not JSON';
  return undefined;
}

/**
 * Bull Board at /admin/queues for administrators only: an admin Bearer
 * token, or HTTP basic with any admin account's e-mail and password (so a
 * browser can open it), checked by the identity module under the same
 * throttle as login. A successful basic sign-in is remembered for a minute (the board
 * polls its API every few seconds; each check is a bcrypt comparison).
 * Changes (retry, clean, add) are refused from other sites and with bodies a
 * form could send: cached basic credentials must not work cross-site.
 */
export function queuesBoard(opts: { queues: Queue[]; verify: TokenVerifier; signIn?: SignIn }): Middleware {
  const adapter = new KoaAdapter();
  adapter.setBasePath(QUEUES_PATH);
  createBullBoard({ queues: opts.queues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
  const board = adapter.registerPlugin() as unknown as Middleware;
  const signedIn = new LRUCache<string, string>({ max: 1000, ttl: 60_000 });

  const gate: Middleware = async function queuesBoardAuth(ctx, next) {
    const refusal = crossSite(ctx);
    if (refusal) throw new Forbidden(`Bull Board does not accept ${refusal}`);
    const header = ctx.get('Authorization');
    const basic = /^Basic\s+(.+)$/i.exec(header);
    if (basic) {
      const key = createHash('sha256').update(basic[1]!).digest('base64url');
      let role = signedIn.get(key);
      if (!role) {
        const [email, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
        if (!opts.signIn) throw new BoardUnauthorized();
        try {
          role = (await opts.signIn((email ?? '').trim().toLowerCase(), rest.join(':'), ctx.ip)).role;
        } catch (err) {
          if (err instanceof Unauthorized || err instanceof ValidationFailed) throw new BoardUnauthorized();
          throw err;
        }
        signedIn.set(key, role);
      }
      if (role !== 'admin') throw new Forbidden('Bull Board is for administrators');
    } else if (!header) {
      throw new BoardUnauthorized();
    } else {
      const principal = await authorize(ctx, 'user', opts.verify);
      if (principal?.role !== 'admin') throw new Forbidden('Bull Board is for administrators');
    }
    await next();
  };
  const guarded = compose([gate, pageForBrowsers, board]);
  return async function queues(ctx, next) {
    if (ctx.path === QUEUES_PATH || ctx.path.startsWith(`${QUEUES_PATH}/`)) return guarded(ctx, next);
    return next();
  };
}
