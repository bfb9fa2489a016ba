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

type Line = { level: number; msg: string; err?: string };
const KEYS = 50;
const PER_KEY = 20;

/** What the handlers of every replica saw, shared by the replicas of one test. */
function recorder(replicas: number) {
  const seen = new Map<string, number[]>();
  const ids = new Map<string, number>();
  const active = new Set<string>();
  const overlaps: string[] = [];
  const byReplica = Array.from({ length: replicas }, () => 0);
  const killed = new Set<number>();
  const handled = () => [...seen.values()].reduce((n, s) => n + s.length, 0);
  const handler =
    (replica: number): EventHandler =>
    async (event) => {
      const subject = event.subject!;
      if (active.has(subject)) overlaps.push(subject);
      active.add(subject);
      await sleep(Math.random() * 3);
      active.delete(subject);
      // A killed process does nothing more: its job never completes, and BullMQ puts it back.
      if (killed.has(replica)) return new Promise<void>(() => undefined);
      seen.set(subject, [...(seen.get(subject) ?? []), (event.payload as { seq: number }).seq]);
      ids.set(event.id, (ids.get(event.id) ?? 0) + 1);
      byReplica[replica]!++;
    };
  return { seen, ids, overlaps, byReplica, killed, handled, handler };
}

type Recorder = ReturnType<typeof recorder>;

/** Every subject's events in order: each handled once, or (`dedupe`) at least once, repeats dropped. */
function expectInOrder(r: Recorder, dedupe = false) {
  expect(r.overlaps).toEqual([]);
  expect(r.seen.size).toBe(KEYS);
  for (const seqs of r.seen.values()) {
    const firsts = dedupe ? seqs.filter((s, i) => seqs.indexOf(s) === i) : seqs;
    expect(firsts).toEqual(Array.from({ length: PER_KEY }, (_, i) => i));
  }
  if (!dedupe) expect([...r.ids.values()].every((n) => n === 1)).toBe(true);
}

describe.skipIf(!hasRedis)('BullMQ event bus with several consumer replicas', () => {
  const buses: BullMqEventBus[] = [];
  const prefixes: string[] = [];
  afterEach(async () => {
    await Promise.all(buses.splice(0).map((b) => b.close()));
    for (const prefix of prefixes.splice(0)) {
      const probe = make(prefix);
      await Promise.all(probe.allQueues().map((q) => q.obliterate({ force: true })));
      await probe.close();
      buses.splice(0);
    }
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
  const newPrefix = () => {
    const prefix = `rep${randomBytes(3).toString('hex')}`;
    prefixes.push(prefix);
    return prefix;
  };

  /** `n` started replicas consuming into `r`, each logging into `lines`. */
  async function replicas(prefix: string, n: number, r: Recorder, lines: Line[] = []) {
    const list = Array.from({ length: n }, () => make(prefix, captureLogger(lines)));
    list.forEach((bus, i) => bus.consume('audit', { 'shop.changed': r.handler(i) }));
    for (const bus of list) await bus.start();
    return list;
  }

  /** Waits until the replicas hold every partition between them, each its fair share, none twice. */
  async function settled(list: BullMqEventBus[]) {
    await waitFor(
      'partitions shared out',
      async () => {
        const held = list.map((b) => b.heldPartitions('audit'));
        const all = held.flat().sort((a, b) => a - b);
        const fair = held.every((h) => Math.abs(h.length - 8 / list.length) < 1);
        return fair && all.join() === '0,1,2,3,4,5,6,7' ? held : undefined;
      },
      30_000,
    );
  }

  /** Like the outbox relay: one event at a time per subject, subjects side by side. */
  async function publishAll(via: BullMqEventBus[], from = 0, to = PER_KEY) {
    await Promise.all(
      Array.from({ length: KEYS }, async (_, k) => {
        for (let seq = from; seq < to; seq++)
          await via[k % via.length]!.publish(envelope(`s${k}`, seq), { attempt: 1, maxAttempts: 1 });
      }),
    );
  }

  const allHandled = (r: Recorder, timeoutMs = 60_000) =>
    waitFor(
      'every event handled',
      async () => (new Set(r.ids.keys()).size >= KEYS * PER_KEY ? true : undefined),
      timeoutMs,
    );

  const lockErrors = (lines: Line[]) => lines.filter((l) => /lock/i.test(`${l.msg} ${l.err ?? ''}`));

  for (const n of [2, 3]) {
    it(`${n} replicas share the partitions and each handles a real share of 1,000 events, in order per subject`, async () => {
      const r = recorder(n);
      const lines: Line[] = [];
      const list = await replicas(newPrefix(), n, r, lines);
      await settled(list);
      await publishAll(list);
      await allHandled(r);
      await sleep(200); // a duplicate would land here
      expectInOrder(r);
      console.log(`[replicas] ${n} replicas, jobs handled per replica: ${r.byReplica.join(', ')}`);
      // Each holds 8/n partitions (2 of 8 at least); the 50 subjects' hashes fill them unevenly.
      for (const count of r.byReplica) expect(count).toBeGreaterThan(n === 2 ? 250 : 100);
      expect(lockErrors(lines)).toEqual([]);
    }, 90_000);
  }

  it('a replica that joins while events flow gets its share of the partitions; none handled twice or out of order', async () => {
    const prefix = newPrefix();
    const r = recorder(2);
    const lines: Line[] = [];
    const [a] = await replicas(prefix, 1, r, lines);
    expect(a!.heldPartitions('audit')).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // The first half of each subject's events, while b joins; the second half once it has its share.
    const publishing = publishAll([a!], 0, PER_KEY / 2);
    await waitFor('some handled', async () => (r.handled() >= 100 ? true : undefined), 30_000);
    const b = make(prefix, captureLogger(lines));
    b.consume('audit', { 'shop.changed': r.handler(1) });
    await b.start();
    await settled([a!, b]);
    await publishing;
    await publishAll([a!], PER_KEY / 2);
    await allHandled(r);
    await sleep(200);
    expectInOrder(r);
    expect(r.byReplica[1]).toBeGreaterThan(100);
    expect(lockErrors(lines)).toEqual([]);
  }, 90_000);

  it('a replica closed mid-stream finishes its jobs and hands its partitions over: each event once, in order', async () => {
    const r = recorder(2);
    const lines: Line[] = [];
    const [a, b] = await replicas(newPrefix(), 2, r, lines);
    await settled([a!, b!]);
    const publishing = publishAll([a!, b!]);
    await waitFor('b has handled some', async () => (r.byReplica[1]! >= 50 ? true : undefined), 30_000);
    await b!.close();
    buses.splice(buses.indexOf(b!), 1);
    expect(b!.heldPartitions('audit')).toEqual([]);
    await settled([a!]);
    await publishing;
    await allHandled(r);
    await sleep(200);
    expectInOrder(r);
    expect(lines.filter((l) => l.level >= 40)).toEqual([]);
  }, 90_000);

  it('a replica killed mid-stream: the others take its partitions and its job again; each event at least once, in order', async () => {
    const r = recorder(2);
    const lines: Line[] = [];
    const [a, b] = await replicas(newPrefix(), 2, r, lines);
    await settled([a!, b!]);
    const publishing = publishAll([a!]);
    await waitFor('b has handled some', async () => (r.byReplica[1]! >= 50 ? true : undefined), 30_000);
    r.killed.add(1);
    await b!.abandon();
    await settled([a!]);
    await publishing;
    // Its membership and leases expire (3 s), then its job's lock (10 s) before a stalled check puts it back.
    await allHandled(r, 120_000);
    await sleep(200);
    expectInOrder(r, true);
    console.log(`[replicas] killed: handled before ${r.byReplica[1]}, after by the survivor ${r.byReplica[0]}`);
  }, 150_000);
  it('a bus closed while jobs are active finishes them and logs no lock errors', async () => {
    const prefix = newPrefix();
    const lines: Line[] = [];
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
