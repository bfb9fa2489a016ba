import type { Logger } from 'pino';
import {
  assertHandlersCover,
  type DeliveryContext,
  type EventBus,
  type EventEnvelope,
  type EventHandler,
  type EventRoutes,
} from '../../kit/events.ts';
import { requestContext } from '../../kit/request-context.ts';

/**
 * Delivers each event straight to the handlers of the consumer modules
 * hosted in this process. A failing handler makes `publish` reject, so the
 * event stays in the producer's outbox and the relay retries it with backoff
 * (handlers are idempotent, so the ones that already succeeded are safe to
 * run again). So does a consumer that is not hosted here, or has no handler
 * for the type: the event is never reported delivered to a module that did
 * not handle it.
 */
export class InProcessEventBus implements EventBus {
  readonly kind = 'in-process' as const;
  private readonly handlers = new Map<string, Record<string, EventHandler>>();

  constructor(
    private readonly routes: EventRoutes,
    private readonly logger: Logger,
  ) {}

  consume(consumer: string, handlers: Record<string, EventHandler>): void {
    assertHandlersCover(this.routes, consumer, handlers);
    this.handlers.set(consumer, handlers);
  }

  async publish(event: EventEnvelope, delivery: DeliveryContext): Promise<void> {
    const failures: unknown[] = [];
    for (const consumer of this.routes[event.type] ?? []) {
      const hosted = this.handlers.get(consumer);
      const handler = hosted?.[event.type];
      if (!handler) {
        failures.push(
          new Error(
            hosted
              ? `${consumer} has no handler for ${event.type}`
              : `${consumer} is not hosted in this process and there is no broker to reach it`,
          ),
        );
        this.logger.debug(
          { eventId: event.id, type: event.type, consumer },
          'event not handled here; kept for a retry',
        );
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
