import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BullMqEventBus } from '../../adapters/bullmq/event-bus.ts';
import { InProcessEventBus } from '../../adapters/inprocess/event-bus.ts';
import { TEST_REDIS_URL, redisAnswers, waitFor } from '../../test/helpers/wait.ts';
import type { DeliveryContext, EventBus, EventEnvelope, EventHandler, EventRoutes } from '../../kit/events.ts';

/**
 * What every event bus promises, run against both: the in-process bus and
 * BullMQ on Redis. Publishing is driven the way the outbox relay drives it —
 * one event at a time per subject, and a refused publish is tried again with
 * the next attempt number — so each case states what a producer can rely on.
 */
const logger = pino({ level: 'silent' });
const hasRedis = await redisAnswers();
if (!hasRedis)
  console.warn(`BullMQ bus conformance skipped: no Redis answers at ${TEST_REDIS_URL} (set TEST_REDIS_URL)`);

const ROUTES: EventRoutes = { 'shop.opened': ['audit'], 'shop.closed': ['audit'] };
const MAX_ATTEMPTS = 3;

/** `concurrency`: events a consumer handles at once (BullMQ; the in-process bus hands each event over as the publisher sends it). */
const makers: { name: string; skip: boolean; make: (concurrency?: number) => EventBus }[] = [
  { name: 'in-process', skip: false, make: () => new InProcessEventBus(ROUTES, logger) },
  {
    name: 'BullMQ',
    skip: !hasRedis,
    make: (concurrency = 8) =>
      new BullMqEventBus({
        redisUrl: TEST_REDIS_URL,
        routes: ROUTES,
        attempts: MAX_ATTEMPTS,
        backoffMs: 20,
        concurrency,
        logger,
        prefix: `conf${randomBytes(3).toString('hex')}`,
      }),
  },
];

const envelope = (type: string, subject: string, payload: Record<string, unknown>): EventEnvelope => ({
  id: randomUUID(),
  type,
  version: 1,
  occurredAt: new Date().toISOString(),
  producer: 'shop',
  requestId: `req-${randomUUID()}`,
  subject: `shop:${subject}`,
  payload,
});

/** As the relay does: publish, and when the bus refuses, try again later with the next attempt, up to the last. */
async function publishLikeTheRelay(bus: EventBus, event: EventEnvelope, retryMs = 20): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bus.publish(event, { attempt, maxAttempts: MAX_ATTEMPTS * 10 });
    } catch (err) {
      if (attempt >= MAX_ATTEMPTS * 10) throw err;
      await sleep(retryMs);
    }
  }
}

describe.each(makers)('the $name event bus', ({ make, skip }) => {
  let bus: EventBus | undefined;
  afterEach(async () => {
    if (bus instanceof BullMqEventBus) await Promise.all(bus.allQueues().map((q) => q.obliterate({ force: true })));
    await bus?.close();
    bus = undefined;
  });

  const handled: { event: EventEnvelope; delivery: DeliveryContext }[] = [];
  const start = async (handlers: Record<string, EventHandler>, concurrency?: number) => {
    handled.length = 0;
    bus = make(concurrency);
    bus.consume('audit', handlers);
    await bus.start();
    return bus;
  };
  const record: EventHandler = async (event, delivery) => {
    handled.push({ event, delivery });
  };

  it.skipIf(skip)('delivers the whole envelope to the consumer’s handler for its type', async () => {
    const b = await start({ 'shop.opened': record, 'shop.closed': async () => undefined });
    const event = envelope('shop.opened', 's1', { id: 's1', at: 9 });
    await publishLikeTheRelay(b, event);
    await waitFor('delivery', async () => (handled.length ? true : undefined), 5000, 10);
    expect(handled).toHaveLength(1);
    expect(handled[0]!.event).toEqual(event);
    expect(handled[0]!.delivery.attempt).toBe(1);
  });

  it.skipIf(skip)(
    'handles events in the order they were published, whatever each handler takes, when handling one at a time',
    async () => {
      // EVENT_CONCURRENCY=1. With more, BullMQ may run two jobs of one subject side by side (open-source BullMQ has no per-key groups).
      const b = await start(
        {
          'shop.opened': async (event, delivery) => {
            await sleep(Math.random() * 8);
            await record(event, delivery);
          },
          'shop.closed': record,
        },
        1,
      );
      const events = Array.from({ length: 20 }, (_, step) =>
        envelope(step % 2 ? 'shop.closed' : 'shop.opened', 'one', { id: 'one', step }),
      );
      for (const e of events) await publishLikeTheRelay(b, e);
      await waitFor('all handled', async () => (handled.length === events.length ? true : undefined), 10_000, 10);
      const step = (e: EventEnvelope) => (e.payload as { step: number }).step;
      expect(handled.map((h) => step(h.event))).toEqual(events.map(step));
    },
  );

  it.skipIf(skip)(
    'gives a failed event to its handler again, with the next attempt number, until it succeeds',
    async () => {
      let failuresLeft = 2;
      const b = await start({
        'shop.opened': async (event, delivery) => {
          await record(event, delivery);
          if (failuresLeft-- > 0) throw new Error('not yet');
        },
        'shop.closed': async () => undefined,
      });
      const event = envelope('shop.opened', 's2', { id: 's2' });
      await publishLikeTheRelay(b, event);
      await waitFor('third attempt', async () => (handled.length === 3 ? true : undefined), 10_000, 10);
      expect(handled.map((h) => [h.event.id, h.delivery.attempt])).toEqual([
        [event.id, 1],
        [event.id, 2],
        [event.id, 3],
      ]);
    },
  );

  it.skipIf(skip)(
    'refuses, at registration, a consumer that has no handler for a type routed to it or one for a type that is not',
    async () => {
      bus = make();
      expect(() => bus!.consume('audit', { 'shop.opened': record })).toThrow(/audit has no handler for shop\.closed/);
      expect(() =>
        bus!.consume('audit', { 'shop.opened': record, 'shop.closed': record, 'shop.sold': record }),
      ).toThrow(/audit handles shop\.sold, which is not routed to it/);
    },
  );

  it.skipIf(skip)(
    'keeps an event published while its consumer is down, and hands it over once the consumer is up',
    async () => {
      bus = make();
      await bus.start();
      handled.length = 0;
      const event = envelope('shop.closed', 's3', { id: 's3' });
      // The consumer comes up 300 ms after the publish started: the event is queued (BullMQ) or refused until then (in process).
      const publishing = publishLikeTheRelay(bus, event, 50);
      await sleep(300);
      expect(handled).toHaveLength(0);
      bus.consume('audit', { 'shop.opened': record, 'shop.closed': record });
      if (bus instanceof BullMqEventBus) await bus.start();
      await publishing;
      await waitFor('late delivery', async () => (handled.length ? true : undefined), 10_000, 10);
      expect(handled.map((h) => h.event.id)).toEqual([event.id]);
    },
  );
});
