import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';

export { SpanKind };
export type { Span };

/**
 * Spans through the OpenTelemetry API only. Until the process registers a
 * tracer provider (src/telemetry/tracing.ts, when OTEL_EXPORTER_OTLP_ENDPOINT
 * is set) and calls enableTracing(), every helper here calls straight
 * through: no span object, no context switch, nothing exported.
 */
const tracer = () => trace.getTracer('toko');

let enabled = false;

/** Called once by the process that registers a tracer provider; until then every helper here is a plain call. */
export function enableTracing(): void {
  enabled = true;
}

export const tracingEnabled = (): boolean => enabled;

/** Handed to `fn` while tracing is off: records nothing, costs nothing. */
const OFF: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

export interface SpanOptions {
  kind: SpanKind;
  attributes?: Attributes;
  /** The context to continue (from headers or job data); the active one when omitted. */
  parent?: Context;
}

/** Runs `fn` inside a new active span that ends with it, marked as an error when `fn` throws. */
export function inSpan<T>(name: string, opts: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  if (!enabled) return fn(OFF);
  return tracer().startActiveSpan(
    name,
    { kind: opts.kind, attributes: opts.attributes },
    opts.parent ?? context.active(),
    async (span) => {
      try {
        return await fn(span);
      } catch (err) {
        span.recordException(err instanceof Error ? err : String(err));
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}

export function markFailed(span: Span, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** W3C trace context headers (`traceparent`, `tracestate`) of the active span, to send along; empty when tracing is off. */
export function traceHeaders(): Record<string, string> {
  if (!enabled) return {};
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

/** The `traceparent` of the active span, to store with something delivered later (an outbox row), or null. */
export function currentTraceparent(): string | null {
  return traceHeaders().traceparent ?? null;
}

/** The context a caller sent (headers, or a stored traceparent); the root context when there is none. */
export function contextFrom(
  carrier: Record<string, string | string[] | undefined> | string | null | undefined,
): Context {
  if (!carrier) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, typeof carrier === 'string' ? { traceparent: carrier } : carrier);
}

/** Trace and span id of the active span, for log lines; undefined when nothing is being traced. */
export function currentTraceIds(): { traceId: string; spanId: string } | undefined {
  if (!enabled) return undefined;
  const sc = trace.getSpan(context.active())?.spanContext();
  return sc && isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : undefined;
}
