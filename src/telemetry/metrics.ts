import type { MikroORM } from '@mikro-orm/postgresql';
import type { Queue } from 'bullmq';
import { Counter as PromCounter, Gauge, type Registry } from 'prom-client';
import type { ModuleName } from '../config.ts';
import type { EventHandler } from '../../kit/events.ts';
import { SpanKind, contextFrom, inSpan } from '../../kit/tracing.ts';
import type { Counter, GaugeSpec, Meter } from '../../kit/meter.ts';
import type { ModuleDatabase } from '../../kit/module.ts';

/**
 * A module's Meter over the process registry: every counter gets a `module`
 * label. Two modules asking for the same counter share one metric, so the
 * name must mean the same thing wherever it is used.
 */
export function registryMeter(registry: Registry, module: string): Meter {
  return {
    counter<L extends string>(spec: { name: string; help: string; labelNames: readonly L[] }): Counter<L> {
      const labelNames = ['module', ...spec.labelNames];
      const metric =
        (registry.getSingleMetric(spec.name) as PromCounter<string> | undefined) ??
        new PromCounter({ ...spec, labelNames, registers: [registry] });
      return { inc: (labels, by = 1) => metric.inc({ module, ...labels }, by) };
    },
    gauge<L extends string>(spec: GaugeSpec<L>): void {
      if (registry.getSingleMetric(spec.name)) return;
      new Gauge({
        name: spec.name,
        help: spec.help,
        labelNames: ['module', ...spec.labelNames],
        registers: [registry],
        async collect() {
          this.reset();
          for (const { labels, value } of await spec.collect().catch(() => [])) this.set({ module, ...labels }, value);
        },
      });
    },
  };
}

/**
 * Wraps a consumer's handlers, whichever bus delivers to them: each run is a
 * consumer span continuing the trace the event carries, and is counted in
 * `toko_events_handled_total{module,type,result}` (a retried event counts
 * once per attempt).
 */
export function instrumentHandlers(
  registry: Registry,
  consumer: string,
  handlers: Record<string, EventHandler>,
): Record<string, EventHandler> {
  const handled =
    (registry.getSingleMetric('toko_events_handled_total') as PromCounter<'module' | 'type' | 'result'> | undefined) ??
    new PromCounter({
      name: 'toko_events_handled_total',
      help: 'Event handler runs by consuming module, event type and result (ok, failed)',
      labelNames: ['module', 'type', 'result'] as const,
      registers: [registry],
    });
  return Object.fromEntries(
    Object.entries(handlers).map(([type, handler]) => [
      type,
      (event, delivery) =>
        // The consumer span continues the trace the event carries, whichever bus brought it.
        inSpan(
          `handle ${type}`,
          {
            kind: SpanKind.CONSUMER,
            parent: contextFrom(event.traceparent),
            attributes: { 'toko.module': consumer, 'toko.event.id': event.id, 'toko.event.attempt': delivery.attempt },
          },
          async () => {
            try {
              await handler(event, delivery);
              handled.inc({ module: consumer, type, result: 'ok' });
            } catch (err) {
              handled.inc({ module: consumer, type, result: 'failed' });
              throw err;
            }
          },
        ),
    ]),
  );
}

const QUEUE_STATES = ['waiting', 'active', 'delayed', 'failed'] as const;

/** `toko_queue_jobs{queue,state}`: jobs in each BullMQ queue of this process, read at scrape time (none with the in-process bus). */
export function registerQueueMetrics(registry: Registry, queues: () => Queue[]): void {
  new Gauge({
    name: 'toko_queue_jobs',
    help: 'Jobs in each BullMQ event queue by state (waiting, active, delayed, failed)',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
    async collect() {
      await Promise.all(
        queues().map(async (q) => {
          const counts = await q.getJobCounts(...QUEUE_STATES).catch(() => undefined);
          if (!counts) return;
          for (const state of QUEUE_STATES) this.set({ queue: q.name, state }, counts[state] ?? 0);
        }),
      );
    },
  });
}

interface TarnPool {
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
}

function poolOf(orm: MikroORM): TarnPool | undefined {
  try {
    return (orm.em.getConnection().getKnex().client as { pool?: TarnPool }).pool;
  } catch {
    return undefined;
  }
}

/**
 * `toko_db_pool_connections{module,state}`: the connection pool of each SQL
 * module (used, free, pending = callers waiting for a connection), the same
 * whether the server is PostgreSQL or the embedded one. MongoDB modules are
 * left out: the driver keeps its pool to itself.
 */
export function registerPoolMetrics(registry: Registry, databases: Map<ModuleName, ModuleDatabase>): void {
  new Gauge({
    name: 'toko_db_pool_connections',
    help: 'Database pool connections of each SQL module by state (used, free, pending)',
    labelNames: ['module', 'state'] as const,
    registers: [registry],
    collect() {
      for (const [module, db] of databases) {
        if (db.kind !== 'sql') continue;
        const pool = poolOf(db.orm);
        if (!pool) continue;
        this.set({ module, state: 'used' }, pool.numUsed());
        this.set({ module, state: 'free' }, pool.numFree());
        this.set({ module, state: 'pending' }, pool.numPendingAcquires());
      }
    },
  });
}
