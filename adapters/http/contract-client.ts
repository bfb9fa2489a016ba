import { setTimeout as sleep } from 'node:timers/promises';
import CircuitBreaker from 'opossum';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { ContractDef, PortOf } from '../../kit/contract.ts';
import { AppError, BadGateway, ServiceUnavailable, ValidationFailed, type ErrorClass } from '../../kit/errors.ts';
import { currentRequestId } from '../../kit/request-context.ts';
import { SpanKind, inSpan, traceHeaders, type Span } from '../../kit/tracing.ts';
import { parseOrThrow } from '../../kit/validation.ts';
import { INTERNAL_PREFIX } from './contract-server.ts';
import { SERVICE_KEY_HEADER } from './service-key.ts';

export interface HttpPortOptions {
  baseUrl: string;
  serviceKey: string;
  /** Per attempt. */
  timeoutMs: number;
  /** Extra attempts, for methods the contract marks idempotent only. */
  retries: number;
  /** First retry delay; doubles each retry, with full jitter. */
  retryBaseMs: number;
  breaker: { errorThresholdPercentage: number; volumeThreshold: number; resetTimeoutMs: number };
  logger: Logger;
}

export interface HttpPort<C extends ContractDef> {
  port: PortOf<C>;
  breaker: CircuitBreaker<[string, unknown], unknown>;
}

const STANDARD = new Set(['type', 'title', 'status', 'detail', 'code', 'instance', 'requestId']);

/** A failure worth another try and counted by the breaker: the service did not answer properly. */
class Unanswered extends Error {}

/** A remote module as its port's calls see it: the contract, the options, and the connections to it. */
interface Remote {
  contract: ContractDef;
  o: HttpPortOptions;
  /** The URL its methods are posted under. */
  base: string;
  dispatcher: Agent;
  /** The contract's typed errors (and validation failures) by code, to rebuild them from problem documents. */
  known: Map<string, ErrorClass>;
}

function remote(contract: ContractDef, opts: HttpPortOptions): Remote {
  const o = { ...opts };
  if (o.timeoutMs < 1) throw new Error('timeoutMs must be at least 1');
  if (o.retries < 0) throw new Error('retries must not be negative');
  return {
    contract,
    o,
    base: `${o.baseUrl.replace(/\/$/, '')}${INTERNAL_PREFIX}/${contract.name}`,
    // undici's own client with kept-alive connections: the global fetch made an AbortSignal and several promises per call, a third of the order service's CPU in split mode.
    dispatcher: new Agent({
      headersTimeout: o.timeoutMs,
      bodyTimeout: o.timeoutMs,
      connectTimeout: o.timeoutMs,
      keepAliveTimeout: 10_000,
    }),
    known: new Map<string, ErrorClass>(
      [...contract.errors, ValidationFailed as unknown as ErrorClass].map((e) => [e.code, e]),
    ),
  };
}

/** One POST of a method: the body of a 2xx answer; else throws what the answer stands for. */
async function send(r: Remote, method: string, input: unknown, span: Span): Promise<unknown> {
  let status: number;
  let body: Record<string, unknown> | undefined;
  try {
    const res = await request(`${r.base}/${method}`, {
      method: 'POST',
      dispatcher: r.dispatcher,
      headers: {
        'content-type': 'application/json',
        [SERVICE_KEY_HEADER]: r.o.serviceKey,
        'x-request-id': currentRequestId() ?? '',
        ...traceHeaders(),
      },
      body: JSON.stringify(input),
    });
    status = res.statusCode;
    body = (await res.body.json().catch(() => undefined)) as Record<string, unknown> | undefined;
  } catch (err) {
    throw new Unanswered(
      `${r.contract.name} did not answer ${method}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  span.setAttribute('http.response.status_code', status);
  if (status >= 200 && status < 300) return body;
  throw answerError(r, method, status, body);
}

/**
 * What a non-2xx answer stands for: no proper answer (5xx), the contract's own
 * typed error, or — for anything else, which is between the services and never
 * the caller's doing — ServiceUnavailable or BadGateway, logged.
 */
function answerError(r: Remote, method: string, status: number, body: Record<string, unknown> | undefined): Error {
  const { contract, o } = r;
  if (status >= 500) return new Unanswered(`${contract.name} answered ${status} to ${method}`);
  const code = typeof body?.code === 'string' ? body.code : undefined;
  const Known = code === undefined ? undefined : r.known.get(code);
  if (Known) {
    const extras = Object.fromEntries(Object.entries(body!).filter(([k]) => !STANDARD.has(k)));
    return new Known(String(body!.detail ?? ''), extras);
  }
  // Anything else is between the services, never the caller's doing: its status must not reach the caller.
  if (status === 401 || status === 403) {
    o.logger.error(
      { remote: contract.name, method, status, code },
      'the remote service refused this service: check SERVICE_KEY on both sides',
    );
    return new ServiceUnavailable(`The ${contract.name} service cannot be reached right now`, {
      service: contract.name,
    });
  }
  o.logger.error(
    { remote: contract.name, method, status, code },
    'the remote service answered a problem its contract does not declare',
  );
  return new BadGateway(`The ${contract.name} service gave an answer this service does not understand`, {
    service: contract.name,
  });
}

/** One try, as a client span whose context travels in the request headers. */
const attempt = (r: Remote, method: string, input: unknown): Promise<unknown> =>
  inSpan(
    `POST ${r.contract.name}.${method}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { 'rpc.service': r.contract.name, 'rpc.method': method, 'http.request.method': 'POST' },
    },
    (span) => send(r, method, input, span),
  );

/** A call: one try, or up to `retries` more with backoff and full jitter when the method is idempotent. */
async function call(r: Remote, method: string, input: unknown): Promise<unknown> {
  const tries = r.contract.methods[method]!.idempotent ? r.o.retries + 1 : 1;
  for (let i = 1; ; i++) {
    try {
      return await attempt(r, method, input);
    } catch (err) {
      if (!(err instanceof Unanswered) || i >= tries) throw err;
      await sleep(Math.random() * r.o.retryBaseMs * 2 ** (i - 1));
    }
  }
}

/** The remote module's circuit breaker around its calls, its state changes logged. */
function breakerOf(r: Remote): CircuitBreaker<[string, unknown], unknown> {
  const { contract, o } = r;
  const breaker = new CircuitBreaker((method: string, input: unknown) => call(r, method, input), {
    name: contract.name,
    // The per-attempt timeout is ours; the breaker only counts outcomes.
    timeout: false,
    errorThresholdPercentage: o.breaker.errorThresholdPercentage,
    volumeThreshold: o.breaker.volumeThreshold,
    resetTimeout: o.breaker.resetTimeoutMs,
    // A typed answer (404, 409, 422) is the remote module working as designed, not a failure.
    errorFilter: (err: unknown) => err instanceof AppError,
  });
  breaker.on('open', () => o.logger.warn({ remote: contract.name }, 'circuit breaker opened'));
  breaker.on('halfOpen', () => o.logger.info({ remote: contract.name }, 'circuit breaker half-open'));
  breaker.on('close', () => o.logger.info({ remote: contract.name }, 'circuit breaker closed'));
  return breaker;
}

/** Each method of the contract: its input validated here, fired through the breaker, its output validated. */
function portOf<C extends ContractDef>(r: Remote, breaker: CircuitBreaker<[string, unknown], unknown>): PortOf<C> {
  const port: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, method] of Object.entries(r.contract.methods)) {
    port[name] = async (input) => {
      const parsed = parseOrThrow(method.input, input);
      try {
        return method.output.parse(await breaker.fire(name, parsed));
      } catch (err) {
        if (err instanceof AppError) throw err;
        const open = (err as { code?: string }).code === 'EOPENBREAKER';
        throw new ServiceUnavailable(
          open ? `The ${r.contract.name} service is unavailable (circuit open)` : (err as Error).message,
          {
            service: r.contract.name,
            retryAfterSeconds: open ? Math.ceil(r.o.breaker.resetTimeoutMs / 1000) : 5,
          },
        );
      }
    };
  }
  return port as PortOf<C>;
}

/**
 * A contract's port over HTTP, built from the contract alone. Each call is
 * validated on this side too, carries the request id, times out, is retried
 * with backoff when the method is idempotent, and goes through one circuit
 * breaker per remote module: when it is open, callers get ServiceUnavailable
 * at once. Problem documents come back as the contract's own error classes.
 */
export function httpPort<C extends ContractDef>(contract: C, opts: HttpPortOptions): HttpPort<C> {
  const r = remote(contract, opts);
  const breaker = breakerOf(r);
  return { port: portOf<C>(r, breaker), breaker };
}
