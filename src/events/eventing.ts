import type { Logger } from 'pino';
import type { BullMqEventBus } from '../../adapters/bullmq/event-bus.ts';
import { InProcessEventBus } from '../../adapters/inprocess/event-bus.ts';
import type { Config, ModuleName } from '../config.ts';
import type { EventBus, EventRecorder } from '../../kit/events.ts';
import type { ModuleDatabase } from '../../kit/module.ts';
import { EVENT_ROUTES, MODULE_DEFINITIONS, PRODUCERS } from '../registry.ts';
import { OutboxRelay } from './outbox-relay.ts';
import { createEventRecorder } from './recorder.ts';

export interface Eventing {
  bus: EventBus;
  /** The bus when it is BullMQ (its queues, for Bull Board, metrics and readiness). */
  bullmq?: BullMqEventBus;
  /** One relay per hosted module that publishes events. */
  relays: Map<ModuleName, OutboxRelay>;
  recorder(module: ModuleName): EventRecorder;
}

/**
 * The event bus this process uses — BullMQ when REDIS_URL is set, in process
 * otherwise — and an outbox relay for each hosted producer. BullMQ and its
 * Redis client are loaded only when they are used.
 */
export async function createEventing(
  config: Config,
  databases: Map<ModuleName, ModuleDatabase>,
  logger: Logger,
): Promise<Eventing> {
  const busLogger = logger.child({ component: 'events' });
  const bullmq = config.redisUrl
    ? new (await import('../../adapters/bullmq/event-bus.ts')).BullMqEventBus({
        redisUrl: config.redisUrl,
        routes: EVENT_ROUTES,
        attempts: config.events.maxAttempts,
        backoffMs: config.events.backoffMs,
        concurrency: config.events.concurrency,
        partitions: config.events.partitions,
        prefix: config.events.queuePrefix,
        logger: busLogger,
      })
    : undefined;
  const bus: EventBus = bullmq ?? new InProcessEventBus(EVENT_ROUTES, busLogger);

  const relays = new Map<ModuleName, OutboxRelay>();
  for (const name of config.modules.filter((m) => PRODUCERS.includes(m))) {
    const db = databases.get(name);
    if (db?.kind !== 'sql') throw new Error(`module ${name} publishes events and needs a SQL database for its outbox`);
    relays.set(
      name,
      new OutboxRelay({
        module: name,
        schema: MODULE_DEFINITIONS[name].schema,
        sql: db.sql,
        bus,
        events: MODULE_DEFINITIONS[name].contract.events,
        logger: busLogger.child({ module: name }),
        maxAttempts: config.events.maxAttempts,
        backoffMs: config.events.backoffMs,
        pollMs: config.events.pollMs,
        leaseSeconds: config.events.leaseSeconds,
        concurrency: config.events.concurrency,
        retentionHours: config.events.retentionHours,
      }),
    );
  }

  return {
    bus,
    bullmq,
    relays,
    recorder: (module) =>
      createEventRecorder({
        module,
        schema: MODULE_DEFINITIONS[module].schema,
        events: MODULE_DEFINITIONS[module].contract.events,
        wake: () => relays.get(module)?.wake(),
      }),
  };
}
