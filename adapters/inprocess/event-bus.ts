import type { Logger } from 'pino';
import type { DeliveryContext, EventBus, EventEnvelope, EventHandler, EventRoutes } from '../../src/kit/events.ts';
import { requestContext } from '../../src/kit/request-context.ts';

/**
 * Delivers each event straight to the handlers of the consumer modules
 * hosted in this process. A failing handler makes `publish` reject, so the
 * event stays in the producer's outbox and the relay retries it with backoff
 * (handlers are idempotent, so the ones that already succeeded are safe to
 * run again). Consumers not hosted here are skipped.
 */
export class InProcessEventBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly handlers = new Map<string, Record<string, EventHandler>>();

  constructor(
    private readonly routes: EventRoutes,
    private readonly logger: Logger,
  ) {}

  consume(consumer: string, handlers: Record<string, EventHandler>): void {
    this.handlers.set(consumer, handlers);
  }

  async publish(event: EventEnvelope, delivery: DeliveryContext): Promise<void> {
    const failures: unknown[] = [];
    for (const consumer of this.routes[event.type] ?? []) {
      const handler = this.handlers.get(consumer)?.[event.type];
      if (!handler) {
        this.logger.debug({ eventId: event.id, type: event.type, consumer }, 'consumer not hosted here; event not delivered to it');
        continue;
      }
      try {
        await requestContext.run({ requestId: event.requestId ?? event.id }, () => handler(event, delivery));
      } catch (err) {
        failures.push(err);
      }
    }
    if (failures.length === 1) throw failures[0];
    if (failures.length > 1) throw new AggregateError(failures, `${failures.length} handlers failed for ${event.type}`);
  }

  async start(): Promise<void> {}

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
