import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ReadCache } from '../../kit/read-cache.ts';
import { Hop } from '../../test/helpers/hop.ts';
import { freePorts, redisAnswers, TEST_REDIS_URL, testQueuePrefix, waitFor } from '../../test/helpers/wait.ts';
import { RedisSharedState } from './shared-state.ts';

const redisUp = await redisAnswers();
if (!redisUp) console.warn(`shared-state tests skipped: no Redis answers at ${TEST_REDIS_URL} (set TEST_REDIS_URL)`);
const logger = pino({ level: 'silent' });
const opened: RedisSharedState[] = [];
afterAll(() => Promise.all(opened.map((s) => s.close())));

/** One replica's shared state: two of these with one prefix are two replicas of a service. */
async function replica(prefix: string, url = TEST_REDIS_URL, replicas = 2, log: pino.Logger = logger) {
  const s = new RedisSharedState({ redisUrl: url, prefix, replicas, commandTimeoutMs: 500, logger: log });
  opened.push(s);
  await s.ready(2000);
  return s;
}

/** A TCP hop in front of TEST_REDIS_URL (to hold back, cut or freeze), and the Redis URL through it. */
async function redisHop(opts?: ConstructorParameters<typeof Hop>[1]): Promise<{ hop: Hop; url: string }> {
  const target = new URL(TEST_REDIS_URL);
  const hop = new Hop({ host: target.hostname, port: Number(target.port || 6379) }, opts);
  return { hop, url: `redis://127.0.0.1:${await hop.listen()}` };
}

/** `waitFor`'s probe for a condition: true once it holds. */
const holds = (done: () => boolean | Promise<boolean>) => async () => ((await done()) ? true : undefined);

/** A replica's cache of `{ v }` under `topic`. */
const cacheOf = (s: RedisSharedState, topic: string) =>
  new ReadCache<{ v: number }>({ ttlMs: 60_000, max: 10, shared: { invalidations: s.invalidations, topic } });

/** The `v` a cache answers for `k` (loading `want` on a miss), polled until it is `want` or `ms` have passed. */
async function seen(cache: ReadCache<{ v: number }>, want: number, ms: number): Promise<number> {
  let v = (await cache.get('k', async () => ({ v: want }))).v;
  for (const deadline = Date.now() + ms; v !== want && Date.now() < deadline;) {
    await sleep(5);
    v = (await cache.get('k', async () => ({ v: want }))).v;
  }
  return v;
}

/** b caches `k` as 1; the value changes to 2 and a drops it: what b answers within `ms`. */
async function dropSeen(a: ReadCache<{ v: number }>, b: ReadCache<{ v: number }>, ms: number): Promise<number> {
  expect(await b.get('k', async () => ({ v: 1 }))).toEqual({ v: 1 });
  await a.forget(['k']);
  return seen(b, 2, ms);
}

/** Subscribers of a channel, as Redis counts them. */
const subscribers = async (admin: Redis, channel: string) =>
  Number(((await admin.pubsub('NUMSUB', channel)) as unknown[])[1]);

/** A logger at debug level whose lines are kept, parsed. */
function capture() {
  const lines: { level: number; msg: string; failed?: number; topic?: string; connection?: string }[] = [];
  return { lines, log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line)) }) };
}

/** Runs `fn` with a Redis user allowed only `channels`, its URL and an admin connection; the user is deleted after. */
async function withAclUser(
  channels: string[],
  fn: (acl: { admin: Redis; user: string; url: string }) => Promise<void>,
): Promise<void> {
  const user = `toko-test-${randomUUID()}`;
  const admin = new Redis(TEST_REDIS_URL);
  try {
    const allowed = channels.map((c) => `&${c}`);
    await admin.call('ACL', 'SETUSER', user, 'on', '>not-a-real-secret', '~*', '+@all', 'resetchannels', ...allowed);
    const url = new URL(TEST_REDIS_URL);
    [url.username, url.password] = [user, 'not-a-real-secret'];
    await fn({ admin, user, url: url.toString() });
  } finally {
    await admin.call('ACL', 'DELUSER', user);
    admin.disconnect();
  }
}

const outcome = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: unknown) => (e instanceof Error ? `error: ${e.message}` : 'refused'),
  );

describe.skipIf(!redisUp)('state shared by replicas through Redis', () => {
  it('counts one limit across two replicas: 40 concurrent consumes of a limit of 20 get exactly 20 through', async () => {
    const prefix = testQueuePrefix();
    const [a, b] = [await replica(prefix), await replica(prefix)];
    const limits = [a, b].map((s) => s.limiter({ keyPrefix: 'login-client', points: 20, duration: 60 }));
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => outcome(limits[i % 2]!.consume('10.0.0.1'))),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(20);
    expect(results.filter((r) => r === 'refused')).toHaveLength(20);
  });

  it('is not ready before its counters answer: the first consumes after ready() count on Redis, not on the insurance', async () => {
    // The counters' connection is opened first; the hop holds that first connection back, so the drops'
    // connection is ready well before it.
    const { hop, url } = await redisHop({ delayMs: (n) => (n ? 0 : 600) });
    let s: RedisSharedState | undefined;
    try {
      s = await replica(testQueuePrefix(), url, 2);
      const limit = s.limiter({ keyPrefix: 'login-client', points: 20, duration: 60 });
      const results = await Promise.all(Array.from({ length: 20 }, () => outcome(limit.consume('10.0.0.3'))));
      // The insurance of one of two replicas would have let 10 through.
      expect(results.filter((r) => r === 'ok')).toHaveLength(20);
    } finally {
      // Closed before the hop, so it does not go on reconnecting to a port nobody holds.
      await s?.close();
      await hop.close();
    }
  });

  it('takes one stall of its own event loop (a long GC, a busy handler) for nothing: Redis answered, the reply waited unread, nothing is dropped', async () => {
    const { lines, log } = capture();
    const s = await replica(testQueuePrefix(), TEST_REDIS_URL, 2, log);
    const cache = cacheOf(s, 'stall');
    await s.ready(2000); // its subscription in place (landing, it drops the topic's entries)
    await cache.get('k', async () => ({ v: 1 }));
    const limit = s.limiter({ keyPrefix: 'login-client', points: 4, duration: 60 });
    // The watchdog's PING goes out, then this process is blocked past the command timeout (500 ms here): the PONG
    // is in the socket, unread, when the timers fire.
    const probed = s['probe']();
    for (const until = Date.now() + 800; Date.now() < until;);
    await probed;
    expect(lines.filter((l) => l.msg.startsWith('shared-state redis does not answer'))).toEqual([]);
    // Neither connection was dropped: the cache kept its entry (a reconnect of the drops' connection flushes
    // everything) and the counters still count in Redis (the insurance would allow 4 / 2).
    await sleep(100);
    expect(cache.peek('k')).toEqual({ v: 1 });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await outcome(limit.consume('10.0.0.4')));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'refused']);
  });

  it('a Redis that stops answering (frozen) is dropped by the watchdog, and the throttles answer from their insurance', async () => {
    const { hop, url } = await redisHop();
    const { lines, log } = capture();
    let s: RedisSharedState | undefined;
    try {
      s = await replica(testQueuePrefix(), url, 2, log);
      const limit = s.limiter({ keyPrefix: 'login-client', points: 20, duration: 60 });
      hop.freeze();
      const warnings = () => lines.filter((l) => l.msg.startsWith('shared-state redis does not answer'));
      await waitFor(
        'the watchdog to drop both frozen connections',
        holds(() => warnings().length >= 2),
        5000,
      );
      const started = Date.now();
      const results = [];
      for (let i = 0; i < 12; i++) results.push(await outcome(limit.consume('10.0.0.5')));
      // No consume waited out a command timeout: the connection is away, so each failed at once.
      expect(Date.now() - started).toBeLessThan(500);
      expect(results.filter((r) => r === 'ok')).toHaveLength(10);
      expect(results.filter((r) => r.startsWith('error'))).toEqual([]);
      // Each connection was dropped once and named: an ended socket whose frozen peer never closes it stays
      // "ready" until ioredis destroys it (2 s later), and is not probed and warned about again meanwhile.
      await sleep(3000);
      expect(
        warnings()
          .map((l) => l.connection)
          .sort(),
      ).toEqual(['counters', 'drops']);
    } finally {
      await s?.close();
      await hop.close();
    }
  });

  it('drops a cache entry on the other replica within 100 ms of the change', async () => {
    const prefix = testQueuePrefix();
    const [a, b] = [await replica(prefix), await replica(prefix)];
    const caches = [a, b].map(
      (s) =>
        new ReadCache<{ v: number }>({
          ttlMs: 60_000,
          max: 10,
          shared: { invalidations: s.invalidations, topic: 't' },
        }),
    );
    await Promise.all([a.ready(), b.ready()]);
    let version = 1;
    for (const c of caches) expect(await c.get('k', async () => ({ v: version }))).toEqual({ v: 1 });
    version = 2;
    const started = Date.now();
    await caches[0]!.forget(['k']);
    expect(await caches[0]!.get('k', async () => ({ v: version }))).toEqual({ v: 2 });
    let seen = 0;
    while (Date.now() - started < 100 && seen !== 2) {
      seen = (await caches[1]!.get('k', async () => ({ v: version }))).v;
      if (seen !== 2) await new Promise((r) => setTimeout(r, 2));
    }
    expect(seen).toBe(2);
  });

  it('an entry cached before its topic subscription is in place is dropped when it lands (a drop published meanwhile is not lost)', async () => {
    const prefix = testQueuePrefix();
    const [a, b] = [await replica(prefix), await replica(prefix)];
    const shared = (s: RedisSharedState) => ({ invalidations: s.invalidations, topic: 'early' });
    const [ca, cb] = [a, b].map((s) => new ReadCache<{ v: number }>({ ttlMs: 60_000, max: 10, shared: shared(s) }));
    let version = 1;
    // Filled at once, while b's SUBSCRIBE may still be on its way; a's drop may reach Redis before it.
    expect(await cb!.get('k', async () => ({ v: version }))).toEqual({ v: 1 });
    version = 2;
    await ca!.forget(['k']);
    await b.ready();
    expect(await cb!.get('k', async () => ({ v: version }))).toEqual({ v: 2 });
  });

  it('a SUBSCRIBE Redis refuses (an ACL without the channel) is tried again until allowed, then drops are heard', () => {
    const prefix = testQueuePrefix();
    const channel = `${prefix}:invalidate:guarded`;
    return withAclUser([`${prefix}:other`], async ({ admin, user, url }) => {
      const { lines, log } = capture();
      const refusals = () => lines.filter((l) => l.msg.startsWith('could not subscribe to cache drops'));
      const [a, b] = [await replica(prefix), await replica(prefix, url, 2, log)];
      const [ca, cb] = [cacheOf(a, 'guarded'), cacheOf(b, 'guarded')];
      await b.ready();
      expect(await subscribers(admin, channel)).toBe(1); // a only: b was refused
      // Refused again every second, but warned about once (a warning a second flooded the log), then in debug.
      await waitFor(
        'three refused subscribes',
        holds(() => refusals().length >= 3),
        5000,
        50,
      );
      expect(refusals().map((l) => [l.level, l.failed])).toEqual([
        [40, 1],
        [20, 2],
        [20, 3],
      ]);
      await admin.call('ACL', 'SETUSER', user, `&${channel}`);
      await waitFor(
        'b subscribed again',
        holds(async () => (await subscribers(admin, channel)) === 2),
        3000,
        50,
      );
      await b.ready();
      const back = lines.filter((l) => l.msg === 'subscribed to cache drops after failed attempts');
      expect(back).toHaveLength(1);
      expect(back[0]!.failed).toBeGreaterThanOrEqual(3);
      expect(await dropSeen(ca, cb, 500)).toBe(2);
    });
  });

  it('after a reconnect drops what it caches, also while Redis still refuses it one of its topics (a drop missed while away is not served)', () => {
    const prefix = testQueuePrefix();
    return withAclUser([`${prefix}:invalidate:open`], async ({ admin, user, url }) => {
      const [a, b] = [await replica(prefix), await replica(prefix, url)];
      const [ca, cb] = [cacheOf(a, 'open'), cacheOf(b, 'open')];
      await Promise.all([a.ready(), b.ready()]);
      expect(await cb.get('k', async () => ({ v: 1 }))).toEqual({ v: 1 });
      // b is cut off (its user disabled, its connections closed); a drop published meanwhile never reaches it.
      await admin.call('ACL', 'SETUSER', user, 'off');
      await admin.call('CLIENT', 'KILL', 'USER', user);
      await ca.forget(['k']);
      await sleep(500);
      await admin.call('ACL', 'SETUSER', user, 'on');
      // Before b is back, something in it starts caching under a topic Redis will refuse it: that SUBSCRIBE
      // waits for the reconnect, as a refused topic's retry may.
      cacheOf(b, 'guarded');
      expect(await seen(cb, 2, 5000)).toBe(2);
    });
  });

  it('a channel an ACL revokes and then allows again is subscribed again, and the revoke crashes nothing', async () => {
    const prefix = testQueuePrefix();
    const channel = `${prefix}:invalidate:guarded`;
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await withAclUser([channel], async ({ admin, user, url }) => {
        const { lines, log } = capture();
        const [a, b] = [await replica(prefix), await replica(prefix, url, 2, log)];
        const [ca, cb] = [cacheOf(a, 'guarded'), cacheOf(b, 'guarded')];
        await Promise.all([a.ready(), b.ready()]);
        expect(await subscribers(admin, channel)).toBe(2);
        // Revoked: Redis closes b's subscription; b comes back and is refused the channel, and says so.
        await admin.call('ACL', 'SETUSER', user, 'resetchannels', `&${prefix}:other`);
        const warned = () => lines.some((l) => l.level === 40 && l.topic === 'guarded');
        await waitFor('a warning about the refused topic', holds(warned), 5000, 50);
        expect(await subscribers(admin, channel)).toBe(1);
        // Allowed again: b subscribes again by itself, and hears drops.
        await admin.call('ACL', 'SETUSER', user, `&${channel}`);
        await waitFor(
          'b subscribed again',
          holds(async () => (await subscribers(admin, channel)) === 2),
          3000,
          50,
        );
        await b.ready();
        expect(await dropSeen(ca, cb, 500)).toBe(2);
      });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('a replica hears only the topics it caches: one channel per topic, subscribed by whoever caches under it', async () => {
    const prefix = testQueuePrefix();
    const [products, users] = [await replica(prefix), await replica(prefix)];
    const heard: string[] = [];
    products.invalidations.subscribe('product.byId', () => heard.push('product'));
    users.invalidations.subscribe('user.byId', () => heard.push('user'));
    await Promise.all([products.ready(), users.ready()]);
    heard.length = 0;
    const counter = new Redis(TEST_REDIS_URL);
    try {
      const numsub = (await counter.pubsub(
        'NUMSUB',
        `${prefix}:invalidate:product.byId`,
        `${prefix}:invalidate:user.byId`,
      )) as (string | number)[];
      expect(numsub.map(String)).toEqual([
        `${prefix}:invalidate:product.byId`,
        '1',
        `${prefix}:invalidate:user.byId`,
        '1',
      ]);
    } finally {
      counter.disconnect();
    }
    await users.invalidations.publish('user.byId', ['u1']);
    await products.invalidations.publish('product.byId', ['p1']);
    await new Promise((r) => setTimeout(r, 100));
    // Each heard its own drop (in process, at once) and nothing of the other's topic.
    expect(heard.sort()).toEqual(['product', 'user']);
  });

  it('with Redis unreachable, each replica allows limit / replicas and no error reaches the caller', async () => {
    const [port] = await freePorts(1);
    const s = await replica(testQueuePrefix(), `redis://127.0.0.1:${port}`, 2);
    const limit = s.limiter({ keyPrefix: 'login-client', points: 20, duration: 60 });
    const results: string[] = [];
    for (let i = 0; i < 15; i++) results.push(await outcome(limit.consume('10.0.0.2')));
    expect(results.filter((r) => r.startsWith('error'))).toEqual([]);
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    // A drop that cannot be published is still made here.
    const cache = new ReadCache<{ v: number }>({
      ttlMs: 60_000,
      max: 10,
      shared: { invalidations: s.invalidations, topic: 't' },
    });
    await cache.get('k', async () => ({ v: 1 }));
    await cache.forget(['k']);
    expect(cache.peek('k')).toBeUndefined();
  });
});
