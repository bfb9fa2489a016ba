import type { Middleware } from 'koa';
import type { Logger } from 'pino';
import { requestContext } from '../../kit/request-context.ts';
import { observeRequest, type Metrics } from './metrics.ts';
import { answerWithProblem, unanswered } from './problem.ts';
import { requestIdFrom } from './request-id.ts';
import { requestLines } from './request-log.ts';
import { moduleOf, routeLabel } from './route-label.ts';

export interface EnvelopeOptions {
  logger: Logger;
  metrics: Metrics;
  /** The request id header, read and echoed. */
  header?: string;
}

/**
 * What every request gets, in one middleware rather than four (each Koa
 * layer costs a closure and a promise per request, and the profile showed
 * it): a request id (the caller's `x-request-id` when well-formed, echoed,
 * and the context every log line, internal call and event of the request
 * carries), problem documents for every error, one log line and one
 * latency observation per request.
 */
export const requestEnvelope = (opts: EnvelopeOptions): Middleware => {
  const header = opts.header ?? 'x-request-id';
  const log = requestLines(opts.logger);
  return async function requestEnvelope(ctx, next) {
    const started = performance.now();
    const requestId = requestIdFrom(ctx.req.headers[header]);
    ctx.state.requestId = requestId;
    ctx.set(header, requestId);
    if (opts.logger.isLevelEnabled('debug')) opts.logger.debug({ requestId, method: ctx.method }, 'request started');
    try {
      await requestContext.run({ requestId }, next);
      const error = unanswered(ctx);
      if (error) answerWithProblem(ctx, error, opts.logger);
    } catch (err) {
      answerWithProblem(ctx, err, opts.logger);
    } finally {
      const ms = performance.now() - started;
      const route = routeLabel(ctx);
      const module = moduleOf(route);
      const status = ctx.status;
      observeRequest(opts.metrics, module, ctx.method, route, status, ms / 1000);
      log({ requestId, module, method: ctx.method, route, status, ms: Math.round(ms * 100) / 100 });
    }
  };
};
