import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { Router } from './router.ts';
import { Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sameKey } from '../../adapters/http/service-key.ts';
import { Forbidden } from '../../kit/errors.ts';
import type { MetaRoute } from './openapi.ts';

export interface Metrics {
  registry: Registry;
  httpDuration: Histogram<'module' | 'method' | 'route' | 'status'>;
}

/**
 * How often the event-loop lag (`nodejs_eventloop_lag_*`) is sampled: a timer this often, prom-client's default,
 * about 100 of an idle process's 106 wake-ups a second. Kept: the histogram holds the whole interval between two
 * samples, so a longer period would raise every exported figure by as much (docs/performance.md, Idle).
 */
export const LOOP_LAG_SAMPLE_MS = 10;

/** One registry per app, so several apps in one process (tests) never collide. */
export function createMetrics(opts: { service: string }): Metrics {
  const registry = new Registry();
  registry.setDefaultLabels({ service: opts.service });
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LOOP_LAG_SAMPLE_MS });
  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by module (kernel for its own routes), method, route template and status',
    labelNames: ['module', 'method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return { registry, httpDuration };
}

/** Records one answered request in the latency histogram. */
export function observeRequest(
  metrics: Metrics,
  module: string,
  method: string,
  route: string,
  status: number,
  seconds: number,
): void {
  metrics.httpDuration.observe({ module, method, route, status: String(status) }, seconds);
}

export const METRICS_ROUTE: MetaRoute = {
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  summary: 'Prometheus metrics (this machine, or METRICS_TOKEN; not mounted here when METRICS_PORT is set)',
  contentType: 'text/plain',
  security: [{}, { metricsToken: [] }],
};

/** A peer on this machine: the socket's own address, never a forwarded one. */
const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/**
 * /metrics on the public port, for peers on this machine (a Prometheus
 * beside the process) and for anyone presenting `METRICS_TOKEN` as a bearer
 * token; everyone else gets 403. Not mounted at all when the metrics have
 * their own port (METRICS_PORT).
 */
export function mountMetrics(router: Router, metrics: Metrics, access: { token?: string }): void {
  router.get('/metrics', async (ctx) => {
    const local = LOOPBACK.test(ctx.req.socket.remoteAddress ?? '');
    const bearer = /^Bearer\s+(\S+)$/i.exec(ctx.get('Authorization'))?.[1];
    if (!local && !(access.token && bearer && sameKey(bearer, access.token))) {
      throw new Forbidden('/metrics answers this machine only, or a bearer METRICS_TOKEN; or serve it on METRICS_PORT');
    }
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
}

/** /metrics alone, on a listener of its own (METRICS_PORT): for a network only Prometheus reaches. */
export async function serveMetrics(metrics: Metrics, at: { port: number; host: string }): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n'),
    );
  });
  server.listen(at.port, at.host);
  await once(server, 'listening');
  return server;
}
