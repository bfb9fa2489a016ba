import { createHash } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Context, Middleware } from 'koa';
import { LRUCache } from 'lru-cache';
import { ACCOUNTS_TOPIC } from '../../kit/auth.ts';
import type { Invalidations } from '../../kit/shared.ts';
import compose from 'koa-compose';
import type { TokenVerifier } from '../auth/tokens.ts';
import {
  AppError,
  defineError,
  Forbidden,
  MethodNotAllowed,
  NotFound,
  Unauthorized,
  ValidationFailed,
} from '../../kit/errors.ts';
import { authorize } from './auth.ts';
import { QUEUES_PATH } from './queues-route.ts';
import { CONTROL_OR_FORMAT } from '../../kit/values.ts';

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

/** The board's base: a path, from where it is mounted (the gateway routes the same path), never from a request header. */
const BOARD_BASE = `${QUEUES_PATH}/`;

/** The page's first script, served here (the page's CSP allows this origin's scripts only). */
const SIGNED_IN_SCRIPT = `${QUEUES_PATH}/toko-signed-in.js`;

/**
 * Opened as `http://admin:pw@host/admin/queues`, the document's URL keeps the
 * credentials, and so does every URL resolved against the page's base; fetch()
 * refuses such URLs, so the board's translations (the first thing it fetches)
 * never load and it stays on "Loading". By the time this runs the browser has
 * signed in and holds the credentials for this realm: the same page, loaded
 * again without them in the URL, works.
 */
const SIGNED_IN_SOURCE = `(function () {
  var base = new URL(document.baseURI);
  if (!base.username && !base.password) return;
  var clean = new URL(location.href);
  clean.username = '';
  clean.password = '';
  location.replace(clean.href);
})();
`;

/**
 * The page as a browser should get it: no Google Fonts link, the base a path
 * (so the board's router and its links work, behind the gateway too), and the
 * script above first.
 */
const pageForBrowsers: Middleware = async (ctx, next) => {
  if (ctx.path === SIGNED_IN_SCRIPT && (ctx.method === 'GET' || ctx.method === 'HEAD')) {
    ctx.type = 'text/javascript';
    ctx.body = SIGNED_IN_SOURCE;
    return;
  }
  await next();
  if (typeof ctx.body === 'string' && ctx.response.is('html')) {
    ctx.body = ctx.body
      .replace(OUTSIDE_STYLESHEET, '')
      .replace(
        /<base href="[^"]*"\s*\/?>/,
        `<base href="${BOARD_BASE}" />\n    <script src="${SIGNED_IN_SCRIPT}"></script>`,
      );
  }
};

/**
 * Every job on toko's queues is an event its producer's outbox wrote, under
 * its event id, which the consumer's inbox keeps once. A job made on the
 * board (add, duplicate) or rewritten (update data) would be an event nobody
 * published: with a fresh id, a second welcome mail. Retries keep the job,
 * its data and its event id, so they stay.
 */
export class BoardJobRefused extends defineError('QUEUES.JOB_REFUSED', 403, 'Job refused') {}

/** Bull Board's API routes that make a job or rewrite one (@bull-board/api's routes.ts). */
const REFUSED_ROUTES = [
  { method: 'post', route: '/api/queues/:queueName/add' },
  { method: 'patch', route: '/api/queues/:queueName/:jobId/update-data' },
];

/** The same routes under the board's path, as its router matches them (any case, one optional trailing slash). */
const REFUSED_PATHS = REFUSED_ROUTES.map(({ method, route }) => ({
  method: method.toUpperCase(),
  path: new RegExp(`^${QUEUES_PATH}${route.replace(/:[a-zA-Z]+/g, '[^/]+')}/?$`, 'i'),
}));

const jobRefused = () =>
  new BoardJobRefused(
    'Bull Board does not create or rewrite jobs: each is an event from an outbox, handled once by its id; retry it instead',
  );

/** Answers a request for a refused route with a problem document, before Bull Board sees it. */
const refuseJobChanges: Middleware = async (ctx, next) => {
  if (REFUSED_PATHS.some((r) => r.method === ctx.method && r.path.test(ctx.path))) throw jobRefused();
  await next();
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
 * throttle as login. A successful basic sign-in is remembered as long as
 * the token check trusts an account (ACCOUNT_CHECK_TTL_MS: the board polls
 * its API every few seconds, and each check is a bcrypt comparison), and
 * forgotten, like a token's account, the moment any account changes.
 * Changes (retry, clean...) are refused from other sites and with bodies a
 * form could send: cached basic credentials must not work cross-site. Jobs
 * are never made or rewritten here (BoardJobRefused).
 */
export function queuesBoard(opts: {
  queues: Queue[];
  verify: TokenVerifier;
  signIn?: SignIn;
  /** How long a basic sign-in is remembered (0: checked on every request). */
  signInTtlMs: number;
  /** Where account changes are heard (ACCOUNTS_TOPIC): every remembered sign-in is forgotten then. */
  invalidations: Invalidations;
}): Middleware {
  const board = bullBoard(opts.queues);
  const basicRole = basicSignIns(opts);
  const gate: Middleware = async function queuesBoardAuth(ctx, next) {
    const refusal = crossSite(ctx);
    if (refusal) throw new Forbidden(`Bull Board does not accept ${refusal}`);
    const header = ctx.get('Authorization');
    const basic = /^Basic\s+(.+)$/i.exec(header);
    if (basic) {
      if ((await basicRole(basic[1]!, ctx.ip)) !== 'admin') throw new Forbidden('Bull Board is for administrators');
    } else if (!header) {
      throw new BoardUnauthorized();
    } else {
      const principal = await authorize(ctx, 'user', opts.verify);
      if (principal?.role !== 'admin') throw new Forbidden('Bull Board is for administrators');
    }
    await next();
  };
  const guarded = compose([gate, refuseJobChanges, pageForBrowsers, board]);
  return async function queues(ctx, next) {
    if (ctx.path !== QUEUES_PATH && !ctx.path.startsWith(`${QUEUES_PATH}/`)) return next();
    // A path Bull Board has no route for ends here: the rest of the app has none under it either, and
    // would read a body Bull Board has read (a 500, answered inside Bull Board's own error handler).
    let unrouted = false;
    await guarded(ctx, async () => {
      unrouted = true;
    });
    if (unrouted && ctx.status === 405) throw new MethodNotAllowed('Bull Board does not serve this method here');
    if (unrouted && ctx.status === 404) throw new NotFound('No such resource');
  };
}

/** Bull Board's own app over the queues, under QUEUES_PATH, its routes that change jobs refused by its handlers too. */
function bullBoard(queues: Queue[]): Middleware {
  const adapter = new KoaAdapter();
  adapter.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter: adapter,
    // Whatever path reaches them, Bull Board's own handlers for those routes refuse too.
    options: {
      handlerHooks: {
        before: ({ method, route }) =>
          REFUSED_ROUTES.some((r) => r.method === method && r.route === route)
            ? { allow: false, status: 403, message: jobRefused().message }
            : undefined,
      },
    },
  });
  return adapter.registerPlugin() as unknown as Middleware;
}

/**
 * The role of the account that HTTP basic credentials (base64 `email:password`) sign in, checked by
 * the identity module and remembered for `signInTtlMs` until any account changes; BoardUnauthorized when they sign in none.
 */
function basicSignIns(opts: {
  signIn?: SignIn;
  signInTtlMs: number;
  invalidations: Invalidations;
}): (credentials: string, ip: string) => Promise<string> {
  const signedIn =
    opts.signInTtlMs > 0 ? new LRUCache<string, string>({ max: 1000, ttl: opts.signInTtlMs }) : undefined;
  // Which sign-in belongs to which account is not kept: any account's change forgets them all (changes are rare).
  let changes = 0;
  opts.invalidations.subscribe(ACCOUNTS_TOPIC, () => {
    changes++;
    signedIn?.clear();
  });
  return async (credentials, ip) => {
    const key = createHash('sha256').update(credentials).digest('base64url');
    let role = signedIn?.get(key);
    if (role) return role;
    const [email, ...rest] = Buffer.from(credentials, 'base64').toString('utf8').split(':');
    const password = rest.join(':');
    // A control character (a NUL...) is in no account’s e-mail: refused here, it never reaches a database.
    if (!opts.signIn || CONTROL_OR_FORMAT.test(email ?? '')) throw new BoardUnauthorized();
    const since = changes;
    try {
      role = (await opts.signIn((email ?? '').trim().toLowerCase(), password, ip)).role;
    } catch (err) {
      if (err instanceof Unauthorized || err instanceof ValidationFailed) throw new BoardUnauthorized();
      throw err;
    }
    // Not remembered when an account changed while it was being checked: the answer may predate the change.
    if (since === changes) signedIn?.set(key, role);
    return role;
  };
}
