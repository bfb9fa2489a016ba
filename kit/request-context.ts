import { AsyncLocalStorage } from 'node:async_hooks';

export interface RequestContext {
  requestId: string;
}

/**
 * The request being served, wherever the code runs below the HTTP layer, so
 * every log line (and, later, every outgoing call and queued job) carries
 * the request id without passing it by hand.
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();

export const currentRequestId = (): string | undefined => requestContext.getStore()?.requestId;
