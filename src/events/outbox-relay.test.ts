import { randomUUID } from 'node:crypto';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlDatabase, sqlOrm, startTestApp, type TestApp } from '../../test/helpers/app.ts';
import type { EventBus, EventEnvelope } from '../../kit/events.ts';
import { userContract } from '../../modules/user/contract.ts';
import { OutboxRelay } from './outbox-relay.ts';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ MODULES: 'user' });
  // This test drives the user module's outbox with a relay of its own.
  await app.server.eventing.relays.get('user')!.stop();
});
afterAll(() => app?.close());

/** A bus that takes 30 ms per event and records the order of deliveries and how many overlapped. */
function slowBus() {
  const delivered: EventEnvelope[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const bus: EventBus = {
    kind: 'in-process',
    async publish(event) {
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      await new Promise((r) => setTimeout(r, 30));
      delivered.push(event);
      inFlight--;
    },
    consume: () => undefined,
    start: async () => undefined,
    close: async () => undefined,
  };
  return { bus, delivered, maxInFlight: () => maxInFlight };
}

/** `steps` events per user into the user module's outbox, step by step: events about one user in the order 0, 1, 2… */
async function recordSteps(users: string[], steps: number): Promise<void> {
  const orm = sqlOrm(app.server, 'user');
  for (let step = 0; step < steps; step++)
    for (const userId of users)
      await orm.em
        .fork()
        .getConnection()
        .execute(
          `insert into "users"."outbox" ("id", "type", "version", "payload", "occurred_at") values (?, 'user.registered', 1, ?::jsonb, clock_timestamp())`,
          [randomUUID(), JSON.stringify({ userId, step })],
        );
}

/** A relay of the user module's outbox onto `bus`, polling every `pollMs`, four deliveries at once. */
const relayOnto = (bus: EventBus, pollMs: number) =>
  new OutboxRelay({
    module: 'user',
    schema: 'users',
    sql: sqlDatabase(app.server, 'user').sql,
    bus,
    events: userContract.events,
    logger: pino({ level: 'silent' }),
    maxAttempts: 3,
    backoffMs: 10,
    pollMs,
    retentionHours: 1,
    concurrency: 4,
  });

describe('OutboxRelay', () => {
  it('delivers events about different subjects side by side, and those about one subject in order', async () => {
    const users = Array.from({ length: 6 }, () => randomUUID());
    // Three events per user, recorded one after another.
    await recordSteps(users, 3);
    const { bus, delivered, maxInFlight } = slowBus();
    const relay = relayOnto(bus, 50);
    relay.start();
    const started = Date.now();
    while (delivered.length < 18 && Date.now() - started < 10_000) await new Promise((r) => setTimeout(r, 20));
    await relay.stop();
    expect(delivered).toHaveLength(18);
    expect(maxInFlight()).toBe(4);
    for (const userId of users) {
      const steps = delivered
        .filter((e) => (e.payload as { userId: string }).userId === userId)
        .map((e) => (e.payload as { step: number }).step);
      expect(steps).toEqual([0, 1, 2]);
    }
  });
});

describe('several relays on one outbox (replicas of the producer)', () => {
  // Per-subject order does NOT hold across relays today (one relay keeps it within its batch; two relays may
  // deliver one subject's events out of order): the subject is not a column the claim could order by. Known gap.
  it('deliver each of 300 events exactly once between three relays', async () => {
    const users: string[] = Array.from({ length: 30 }, () => randomUUID());
    await recordSteps(users, 10);
    const delivered: { relay: number; event: EventEnvelope }[] = [];
    const relays = [0, 1, 2].map((n) =>
      relayOnto(
        {
          kind: 'in-process',
          async publish(event) {
            await new Promise((r) => setTimeout(r, 2));
            delivered.push({ relay: n, event });
          },
          consume: () => undefined,
          start: async () => undefined,
          close: async () => undefined,
        },
        20,
      ),
    );
    for (const r of relays) r.start();
    const ours = () => delivered.filter((d) => users.includes((d.event.payload as { userId: string }).userId));
    const started = Date.now();
    while (ours().length < 300 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    await Promise.all(relays.map((r) => r.stop()));
    const mine = ours();
    expect(mine).toHaveLength(300);
    expect(new Set(mine.map((d) => d.event.id)).size).toBe(300);
    expect(new Set(mine.map((d) => d.relay)).size).toBeGreaterThan(1);
  });
});
