import type { Router } from './router.ts';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetaRoute } from './openapi.ts';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
}

/** One registry per app, so several apps in one process (tests) never collide. */
export function createMetrics(opts: { service: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service });
  collectDefaultMetrics({ register: registry });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, httpDuration };
}

/** Records one answered request in the latency histogram. */
export function observeRequest(metrics: Metrics, method: string, route: string, status: number, seconds: number): void {
  metrics.httpDuration.observe({ method, route, status: String(status) }, seconds);
}

export const METRICS_ROUTE: MetaRoute = { method: 'get', path: '/metrics', summary: 'Prometheus metrics', contentType: 'text/plain' };

export function mountMetrics(router: Router, metrics: Metrics): void {
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
}
