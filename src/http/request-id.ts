import { randomUUID } from 'node:crypto';
import type { Middleware } from 'koa';
import { requestContext } from '../kit/request-context.ts';

const VALID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Takes a well-formed `x-request-id` from the caller or makes one; echoes it on the response. */
export const requestId = (opts: { header?: string } = {}): Middleware => {
  const header = opts.header ?? 'x-request-id';
  return async function requestId(ctx, next) {
    const incoming = ctx.get(header);
    const id = VALID.test(incoming) ? incoming : randomUUID();
    ctx.state.requestId = id;
    ctx.set(header, id);
    await requestContext.run({ requestId: id }, next);
  };
};
