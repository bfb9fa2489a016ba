import { z } from 'zod';
import { defineError } from '../../kit/errors.ts';
import { routesFor } from '../../kit/route.ts';

export type HealthCheck = () => Promise<void>;

/** 503 from the readiness routes: `failing` names the checks (or, for /health/system, the modules) that are not ready. */
export class NotReady extends defineError(
  'HEALTH.NOT_READY',
  503,
  'Not ready',
  z
    .object({
      failing: z.array(z.string()),
      checks: z
        .record(z.string(), z.enum(['ok', 'failing']))
        .optional()
        .meta({ description: 'Every check of this process (GET /health/ready)' }),
      info: z.record(z.string(), z.string()).optional(),
      modules: z
        .record(z.string(), z.enum(['ok', 'failing']))
        .optional()
        .meta({ description: 'Every module (GET /health/system)' }),
    })
    .meta({
      example: { failing: ['product'], modules: { user: 'ok', product: 'failing', order: 'ok', notification: 'ok' } },
    }),
) {}

export interface HealthRuntime {
  modules: string[];
  /** Named checks: `user.database`, ... */
  checks: Record<string, HealthCheck>;
  /** Facts about this process shown with readiness (event bus in use, whether Bull Board is on and why not). */
  info: Record<string, string>;
  timeoutMs: number;
  /** The other services of a split deployment (`<M>_SERVICE_URL`), by the module each hosts, for `/health/system`. */
  peers: Record<string, string>;
  /** True from SIGTERM on: readiness answers 503 (`failing: ['draining']`) while in-flight and new requests are still served. */
  draining: () => boolean;
}

const route = routesFor<HealthRuntime>();

function withTimeout(check: HealthCheck, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    check(),
    new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Runs every check of this process at once: each one's outcome, and the names of those that failed. */
async function runChecks(rt: HealthRuntime) {
  const names = Object.keys(rt.checks);
  const results = await Promise.allSettled(names.map((n) => withTimeout(rt.checks[n]!, rt.timeoutMs)));
  const checks: Record<string, string> = {};
  const failed: string[] = [];
  results.forEach((r, i) => {
    const name = names[i]!;
    checks[name] = r.status === 'fulfilled' ? 'ok' : 'failing';
    if (r.status === 'rejected') failed.push(name);
  });
  return { checks, failed };
}

/** Whether another service says it is ready (its own `/health/ready`); silence counts as not ready. */
async function peerReady(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(new URL('/health/ready', url), { signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

const SERVICE_STATES = ['ok', 'failing'] as const;

export const healthRoutes = [
  route({
    method: 'get',
    operationId: 'getLiveness',
    path: '/health',
    summary: 'Liveness: the process is up',
    tags: ['health'],
    access: 'public',
    response: z
      .object({ status: z.literal('ok'), modules: z.array(z.string()) })
      .meta({ example: { status: 'ok', modules: ['user', 'product', 'order', 'notification'] } }),
    handler: async (_input, rt) => ({ status: 'ok', modules: rt.modules }),
  }),
  route({
    method: 'get',
    operationId: 'getReadiness',
    path: '/health/ready',
    summary: "Readiness: every hosted module's dependencies answer",
    description: 'Answers 503 naming each check that failed, and 503 (`failing: ["draining"]`) from SIGTERM on.',
    tags: ['health'],
    access: 'public',
    problems: [NotReady],
    response: z
      .object({
        status: z.literal('ok'),
        checks: z.record(z.string(), z.literal('ok')),
        info: z.record(z.string(), z.string()),
      })
      .meta({
        example: {
          status: 'ok',
          checks: { 'user.database': 'ok', 'order.database': 'ok', 'events.redis': 'ok' },
          info: { eventBus: 'bullmq' },
        },
      }),
    handler: async (_input, rt) => {
      if (rt.draining()) throw new NotReady('Not ready: shutting down', { failing: ['draining'], info: rt.info });
      const { checks, failed } = await runChecks(rt);
      if (failed.length > 0)
        throw new NotReady(`Not ready: ${failed.join(', ')}`, { checks, failing: failed, info: rt.info });
      return { status: 'ok', checks, info: rt.info };
    },
  }),
  route({
    method: 'get',
    operationId: 'getSystemReadiness',
    path: '/health/system',
    summary: 'Readiness of the whole deployment: every module, wherever it runs',
    description: [
      "This process's modules are ready when its own checks pass; a module another service hosts is ready when that service's `/health/ready` answers 200",
      'within the health timeout. Answers 503 naming the modules that are not. In one process it is `/health/ready` by module; behind the split gateway it is',
      "the gateway's `/health/ready`.",
    ].join(' '),
    tags: ['health'],
    access: 'public',
    problems: [NotReady],
    response: z
      .object({ status: z.literal('ok'), modules: z.record(z.string(), z.enum(SERVICE_STATES)) })
      .meta({ example: { status: 'ok', modules: { user: 'ok', product: 'ok', order: 'ok', notification: 'ok' } } }),
    handler: async (_input, rt) => {
      const peers = Object.entries(rt.peers);
      const [own, ...others] = await Promise.all([
        runChecks(rt),
        ...peers.map(([, url]) => peerReady(url, rt.timeoutMs)),
      ]);
      const modules: Record<string, (typeof SERVICE_STATES)[number]> = {};
      for (const m of rt.modules) modules[m] = own.failed.length === 0 ? 'ok' : 'failing';
      peers.forEach(([m], i) => (modules[m] = others[i] ? 'ok' : 'failing'));
      const failing = Object.keys(modules).filter((m) => modules[m] !== 'ok');
      if (failing.length > 0) throw new NotReady(`Not ready: ${failing.join(', ')}`, { modules, failing });
      return { status: 'ok', modules };
    },
  }),
];
