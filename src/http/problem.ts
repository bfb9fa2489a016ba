import type { Context } from 'koa';
import type { Logger } from 'pino';
import { moduleOf, routeLabel } from './route-label.ts';
import { isStoreOutage } from '../db/outage.ts';
import {
  AppError,
  PROBLEM_TYPE_PREFIX,
  MalformedJson,
  NotFound,
  PayloadTooLarge,
  ServiceUnavailable,
  UnsupportedMediaType,
} from '../../kit/errors.ts';

export { PROBLEM_TYPE_PREFIX };

export interface ProblemDocument {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance: string;
  requestId: string;
  [extra: string]: unknown;
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  expose?: boolean;
  type?: string;
  message?: string;
}

/** Errors thrown by Koa, the router and the body parser, translated into typed errors. */
function fromFrameworkError(err: HttpishError): AppError | undefined {
  const status = err.status ?? err.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  if (status === 413) return new PayloadTooLarge('The request body is larger than this server accepts');
  if (status === 415) return new UnsupportedMediaType('The request body must be application/json');
  if (status === 400 && (err.type === 'entity.parse.failed' || /JSON|token/i.test(err.message ?? ''))) {
    return new MalformedJson('The request body is not valid JSON');
  }
  if (status === 404) return new NotFound('No such resource');
  return new AppError({
    code: `HTTP.${status}`,
    status,
    title: 'Request not accepted',
    detail: err.expose && err.message ? err.message : 'The request was not accepted',
  });
}

function send(ctx: Context, error: AppError): void {
  const body: ProblemDocument = {
    ...error.extras,
    type: `${PROBLEM_TYPE_PREFIX}${error.code}`,
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    instance: ctx.path,
    requestId: ctx.state.requestId as string,
  };
  ctx.status = error.status;
  for (const [k, v] of Object.entries(error.headers)) ctx.set(k, v);
  ctx.type = 'application/problem+json';
  ctx.body = body;
}

/**
 * The one place errors become HTTP: typed errors keep their status and code;
 * anything else is a 500 whose details go to the log, never to the caller.
 */
export function answerWithProblem(ctx: Context, err: unknown, logger: Logger): void {
  if (err instanceof AppError) return send(ctx, err);
  const mapped = fromFrameworkError(err as HttpishError);
  if (mapped) return send(ctx, mapped);
  if (isStoreOutage(err)) {
    logger.warn(
      {
        err: err instanceof Error ? err.message : String(err),
        requestId: ctx.state.requestId,
        module: moduleOf(routeLabel(ctx)),
      },
      'a database is unavailable; answered 503',
    );
    return send(
      ctx,
      new ServiceUnavailable('A database this request needs is not available right now', { retryAfterSeconds: 5 }),
    );
  }
  logger.error({ err, requestId: ctx.state.requestId, module: moduleOf(routeLabel(ctx)) }, 'unhandled error');
  send(
    ctx,
    new AppError({
      code: 'SERVER.INTERNAL',
      status: 500,
      title: 'Internal server error',
      detail: 'Something went wrong on our side',
    }),
  );
}

/** A request nothing answered (no route) as the error to answer with; undefined when there is an answer. */
export function unanswered(ctx: Context): AppError | undefined {
  if (ctx.body !== undefined && ctx.body !== null) return undefined;
  if (ctx.status === 404) return new NotFound('No such resource');
  return undefined;
}
