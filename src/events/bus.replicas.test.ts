import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { BullMqEventBus, partitionOf } from '../../adapters/bullmq/event-bus.ts';
import { TEST_REDIS_URL, redisAnswers, waitFor } from '../../test/helpers/wait.ts';
import type { EventEnvelope, EventHandler, EventRoutes } from '../../kit/events.ts';

/**
 * Several consumer replicas of one module: two BullMQ buses (two processes'
 * worth of workers) on the same queues, with partitioned queues and
 * concurrency above 1.
 */
const hasRedis = await redisAnswers();
const ROUTES: EventRoutes = { 'shop.changed': ['audit'] };

const envelope = (subject: string, seq: number): EventEnvelope => ({
  id: randomUUID(),
  type: 'shop.changed',
  version: 1,
  occurredAt: new Date().toISOString(),
  producer: 'shop',
  requestId: null,
  subject: `shop:${subject}`,
  payload: { seq },
});

function captureLogger(lines: { level: number; msg: string; err?: string }[]) {
  return pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
}

describe('partitionOf', () => {
  it('puts one key in one partition and spreads keys over all partitions', () => {
    expect(partitionOf('order:1', 8)).toBe(partitionOf('order:1', 8));
    const used = new Set(Array.from({ length: 200 }, (_, i) => partitionOf(`order:${i}`, 8)));
    expect([...used].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(partitionOf('anything', 1)).toBe(0);
  });
});

describe.skipIf(!hasRedis)('BullMQ event bus with two consumer replicas', () => {
  const buses: BullMqEventBus[] = [];
  afterEach(async () => {
    if (buses[0]) await Promise.all(buses[0].allQueues().map((q) => q.obliterate({ force: true })));
    await Promise.all(buses.splice(0).map((b) => b.close()));
  });

  const make = (prefix: string, logger = pino({ level: 'silent' })) => {
    const bus = new BullMqEventBus({
      redisUrl: TEST_REDIS_URL,
      routes: ROUTES,
      attempts: 3,
      backoffMs: 20,
      concurrency: 4,
      partitions: 8,
      logger,
      prefix,
    });
    buses.push(bus);
    return bus;
  };

  it('1,000 events over 50 subjects are each handled once, in order per subject', async () => {
    const prefix = `rep${randomBytes(3).toString('hex')}`;
    const seen = new Map<string, number[]>();
    const active = new Set<string>();
    const byReplica = [0, 0];
    const overlaps: string[] = [];
    const handler =
      (replica: number): EventHandler =>
      async (event) => {
        const subject = event.subject!;
        if (active.has(subject)) overlaps.push(subject);
        active.add(subject);
        await sleep(Math.random() * 3);
        seen.set(subject, [...(seen.get(subject) ?? []), (event.payload as { seq: number }).seq]);
        byReplica[replica]!++;
        active.delete(subject);
      };
    const a = make(prefix);
    const b = make(prefix);
    a.consume('audit', { 'shop.changed': handler(0) });
    b.consume('audit', { 'shop.changed': handler(1) });
    await Promise.all([a.start(), b.start()]);

    const KEYS = 50;
    const PER_KEY = 20;
    // Like the outbox relay: one event at a time per subject, subjects side by side.
    await Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        for (let seq = 0; seq < PER_KEY; seq++)
          await (k % 2 ? a : b).publish(envelope(`s${k}`, seq), { attempt: 1, maxAttempts: 1 });
      }),
    );
    await waitFor(
      'every event handled',
      async () => ([...seen.values()].reduce((n, s) => n + s.length, 0) >= KEYS * PER_KEY ? true : undefined),
      60_000,
    );
    await sleep(200); // a duplicate would land here

    expect(overlaps).toEqual([]);
    expect(seen.size).toBe(KEYS);
    for (const seqs of seen.values()) expect(seqs).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
    // Not asserted: that both replicas take jobs. With BullMQ's global concurrency a worker that
    // finishes a job fetches the next of its partition itself, and the other replica's worker gets
    // no wake-up while the partition is busy, so a busy partition stays with one replica (seen:
    // 1,000 to one, 0 to the other, in each of three runs). Why no small change fixes it: docs/events.md.
    console.log(`[replicas] jobs handled per replica: ${byReplica.join(', ')}`);
    expect(byReplica[0]! + byReplica[1]!).toBe(KEYS * PER_KEY);
  }, 90_000);

  it('a bus closed while jobs are active finishes them and logs no lock errors', async () => {
    const prefix = `rep${randomBytes(3).toString('hex')}`;
    const lines: { level: number; msg: string; err?: string }[] = [];
    const bus = make(prefix, captureLogger(lines));
    let started = 0;
    let finished = 0;
    bus.consume('audit', {
      'shop.changed': async () => {
        started++;
        await sleep(300);
        finished++;
      },
    });
    await bus.start();
    for (let k = 0; k < 6; k++) await bus.publish(envelope(`c${k}`, 0), { attempt: 1, maxAttempts: 1 });
    await waitFor('a job active', async () => (started > 0 ? true : undefined));
    await bus.close();
    buses.splice(buses.indexOf(bus), 1);
    expect(finished).toBe(started);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);

    // The jobs it had are completed, none left active for another replica to take again.
    const probe = make(prefix);
    const counts = await Promise.all(probe.allQueues().map((q) => q.getJobCounts('active', 'completed', 'failed')));
    expect(counts.reduce((n, c) => n + (c.active ?? 0) + (c.failed ?? 0), 0)).toBe(0);
    expect(counts.reduce((n, c) => n + (c.completed ?? 0), 0)).toBe(finished);
  }, 30_000);
});
