import type { Middleware } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';

/** JSON bodies only, with a size limit; the parser's errors become 400/413 problems. Requests without a body skip the parser. */
export const jsonBody = (opts: { limit: string }): Middleware => {
  const parse = koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: opts.limit,
    urlencoded: false,
    text: false,
    multipart: false,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  }) as unknown as Middleware;
  return function jsonBody(ctx, next) {
    const headers = ctx.req.headers;
    if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) return next();
    return parse(ctx, next);
  };
};
