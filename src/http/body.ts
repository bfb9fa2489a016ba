import type { Middleware } from 'koa';
import { HttpMethodEnum, koaBody } from 'koa-body';

/** JSON bodies only, with a size limit; the parser's errors become 400/413 problems. */
export const jsonBody = (opts: { limit: string }): Middleware =>
  koaBody({
    json: true,
    jsonStrict: true,
    jsonLimit: opts.limit,
    urlencoded: false,
    text: false,
    multipart: false,
    parsedMethods: [HttpMethodEnum.POST, HttpMethodEnum.PUT, HttpMethodEnum.PATCH, HttpMethodEnum.DELETE],
  }) as unknown as Middleware;
