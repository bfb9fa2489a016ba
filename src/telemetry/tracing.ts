import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  NodeTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { enableTracing } from '../../kit/tracing.ts';

export interface TracingOptions {
  serviceName: string;
  version: string;
  /** OTLP/HTTP collector base URL; spans go to `<endpoint>/v1/traces` in batches. */
  endpoint?: string;
  /** Instead of a collector (tests): every span is handed over as soon as it ends. */
  exporter?: SpanExporter;
}

export interface Tracing {
  /** Exports what is still buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Registers the process-wide tracer provider: W3C trace context propagation,
 * AsyncLocalStorage context, and the `pg` driver instrumentation (one span
 * per database query, whichever module runs it). toko's own spans (HTTP in,
 * internal contract calls, outbox publish, event handling) come from
 * kit/tracing.ts. Call it once, before the server starts; without it
 * tracing stays off and costs nothing.
 */
export function startTracing(opts: TracingOptions): Tracing {
  const exporter = opts.exporter ?? new OTLPTraceExporter({ url: `${opts.endpoint!.replace(/\/+$/, '')}/v1/traces` });
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: opts.serviceName, [ATTR_SERVICE_VERSION]: opts.version }),
    spanProcessors: [opts.exporter ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)],
  });
  provider.register();
  enableTracing();
  const unregister = registerInstrumentations({
    tracerProvider: provider,
    // Queries only: connect and pool spans would outnumber them without saying more.
    instrumentations: [new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false })],
  });
  return {
    async shutdown() {
      unregister();
      await provider.shutdown();
    },
  };
}
