import { z } from 'zod';
import { ServiceUnavailable } from '../kit/errors.ts';
import { routesFor } from '../kit/route.ts';

export type HealthCheck = () => Promise<void>;

export interface HealthRuntime {
  modules: string[];
  /** Named checks: `user.database`, ... */
  checks: Record<string, HealthCheck>;
  /** Facts about this process shown with readiness (event bus in use, whether Bull Board is on and why not). */
  info: Record<string, string>;
  timeoutMs: number;
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

export const healthRoutes = [
  route({
    method: 'get',
    path: '/health',
    summary: 'Liveness: the process is up',
    tags: ['health'],
    access: 'public',
    response: z.object({ status: z.literal('ok'), modules: z.array(z.string()) }),
    handler: async (_input, rt) => ({ status: 'ok', modules: rt.modules }),
  }),
  route({
    method: 'get',
    path: '/health/ready',
    summary: "Readiness: every hosted module's dependencies answer",
    description: 'Answers 503 naming each check that failed.',
    tags: ['health'],
    access: 'public',
    problems: [503],
    response: z.object({ status: z.literal('ok'), checks: z.record(z.string(), z.literal('ok')), info: z.record(z.string(), z.string()) }),
    handler: async (_input, rt) => {
      const names = Object.keys(rt.checks);
      const results = await Promise.allSettled(names.map((n) => withTimeout(rt.checks[n]!, rt.timeoutMs)));
      const checks: Record<string, string> = {};
      const failed: string[] = [];
      results.forEach((r, i) => {
        const name = names[i]!;
        checks[name] = r.status === 'fulfilled' ? 'ok' : 'failing';
        if (r.status === 'rejected') failed.push(name);
      });
      if (failed.length > 0) throw new ServiceUnavailable(`Not ready: ${failed.join(', ')}`, { checks, failing: failed, info: rt.info });
      return { status: 'ok', checks, info: rt.info };
    },
  }),
];
