import { timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { KoaAdapter } from '@bull-board/koa';
import type { Queue } from 'bullmq';
import type { Middleware } from 'koa';
import compose from 'koa-compose';
import type { TokenVerifier } from '../auth/tokens.ts';
import { AppError, Forbidden } from '../kit/errors.ts';
import { authorize } from './auth.ts';
import { QUEUES_PATH } from './queues-route.ts';


const same = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

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

/**
 * Bull Board at /admin/queues for administrators only: an admin Bearer
 * token, or HTTP basic with ADMIN_EMAIL and ADMIN_PASSWORD (so a browser can open it).
 */
export function queuesBoard(opts: { queues: Queue[]; verify: TokenVerifier; admin?: { email: string; password: string } }): Middleware {
  const adapter = new KoaAdapter();
  adapter.setBasePath(QUEUES_PATH);
  createBullBoard({ queues: opts.queues.map((q) => new BullMQAdapter(q)), serverAdapter: adapter });
  const board = adapter.registerPlugin() as unknown as Middleware;

  const gate: Middleware = async function queuesBoardAuth(ctx, next) {
    const header = ctx.get('Authorization');
    const basic = /^Basic\s+(.+)$/i.exec(header);
    if (basic) {
      const [email, ...rest] = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':');
      const ok = opts.admin && same((email ?? '').toLowerCase(), opts.admin.email) && same(rest.join(':'), opts.admin.password);
      if (!ok) throw new BoardUnauthorized();
    } else if (!header) {
      throw new BoardUnauthorized();
    } else {
      const principal = await authorize(ctx, 'user', opts.verify);
      if (principal?.role !== 'admin') throw new Forbidden('Bull Board is for administrators');
    }
    await next();
  };
  const guarded = compose([gate, board]);
  return async function queues(ctx, next) {
    if (ctx.path === QUEUES_PATH || ctx.path.startsWith(`${QUEUES_PATH}/`)) return guarded(ctx, next);
    return next();
  };
}
