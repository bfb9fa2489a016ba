import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible';
import { LocalInvalidations, type Invalidations, type SharedState } from '../../kit/shared.ts';

export interface RedisSharedStateOptions {
  redisUrl: string;
  /** Namespaces the counters' keys and the drops' channels (one deployment's, not another's on the same Redis). */
  prefix: string;
  /** Replicas of this service: while Redis cannot be reached, each keeps limit / replicas in memory. */
  replicas: number;
  /** A Redis command not answered within this is an error (then the in-memory insurance decides). */
  commandTimeoutMs: number;
  logger: Logger;
}

const PROBE_EVERY_MS = 1000;
const RETRY_SUBSCRIBE_MS = 1000;

/**
 * Ready, and not already ended by the watchdog: a frozen peer never answers the close, so ioredis destroys an
 * ended socket only after its `disconnectTimeout` (2 s), and the status says "ready" until then.
 */
const live = (connection: Redis) => connection.status === 'ready' && connection.stream.writable;

interface Drop {
  from: string;
  topic: string;
  keys?: string[];
}

/**
 * Throttles and cache drops shared through Redis by every replica:
 * - each limiter is rate-limiter-flexible's RateLimiterRedis (one atomic
 *   increment per consume), with an in-memory insurance limiter of
 *   points / replicas used whenever Redis does not answer, so an outage
 *   neither lets a guesser through nor turns a login into a 5xx;
 * - drops are published on a channel per topic, and a replica subscribes (on
 *   a connection of its own) only to the topics something in it caches: a
 *   product's stock move wakes the product replicas, not every process of
 *   the deployment. Whenever a subscription comes back after a loss, or is
 *   first in place, the replica drops what it caches under it (it may have
 *   missed messages).
 */
export class RedisSharedState implements SharedState {
  readonly kind = 'redis' as const;
  private readonly client: Redis;
  private readonly subscriber: Redis;
  private readonly local = new LocalInvalidations();
  private readonly self = randomUUID();
  /** The SUBSCRIBE of each topic this replica listens to (its channel: `channel(topic)`). */
  private readonly listening = new Map<string, Promise<void>>();
  /** Failed SUBSCRIBEs of a topic in a row (the first, and every 60th, logged as a warning). */
  private readonly failedSubscribes = new Map<string, number>();
  private readonly channelPrefix: string;
  private readonly connected: Promise<void>;
  private closed = false;
  private readonly watchdog: NodeJS.Timeout;
  readonly invalidations: Invalidations;

  constructor(private readonly o: RedisSharedStateOptions) {
    if (o.replicas < 1) throw new Error('replicas must be at least 1');
    this.channelPrefix = `${o.prefix}:invalidate:`;
    // No offline queue: a command while Redis is away fails at once, and the insurance limiter answers.
    const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: o.commandTimeoutMs };
    this.client = new Redis(o.redisUrl, { ...options, lazyConnect: false });
    this.client.on('error', (err) => o.logger.debug({ err: err.message }, 'shared-state redis connection error'));
    // A Redis that accepts connections but does not answer (frozen, half-open) still looks "ready": the watchdog
    // PINGs each connection every second and drops one that misses twice in a row (`probe`), so the throttles
    // turn to their insurance at once instead of waiting out a timeout on every call.
    this.watchdog = setInterval(() => void this.probe(), PROBE_EVERY_MS);
    this.watchdog.unref();
    // Not ioredis's own resubscription: it sends every channel in one SUBSCRIBE, which Redis refuses whole when
    // an ACL forbids one of them, and nothing can catch that rejection (an unhandled rejection ends the process).
    // `resubscribed` sends them one by one instead.
    this.subscriber = new Redis(o.redisUrl, {
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      autoResubscribe: false,
    });
    this.subscriber.on('error', (err) => o.logger.debug({ err: err.message }, 'shared-state redis subscription error'));
    let readyOnce = false;
    // Both connections: until the counters' one is ready every consume goes to the insurance (limit / replicas),
    // so a replica that took requests before it would let more through than the shared limit.
    this.connected = Promise.all(
      [this.client, this.subscriber].map((c) => new Promise<void>((resolve) => c.once('ready', () => resolve()))),
    ).then(() => undefined);
    this.subscriber.on('ready', () => {
      if (readyOnce) this.resubscribed();
      readyOnce = true;
    });
    this.subscriber.on('message', (channel: string, message: string) => {
      const topic = channel.slice(this.channelPrefix.length);
      if (!channel.startsWith(this.channelPrefix) || !this.listening.has(topic)) return;
      let drop: Drop;
      try {
        drop = JSON.parse(message) as Drop;
      } catch {
        return;
      }
      if (drop.from === this.self || drop.topic !== topic) return;
      this.local.deliver(topic, Array.isArray(drop.keys) ? drop.keys.map(String) : undefined);
    });
    this.invalidations = {
      publish: (topic, keys) => this.publish(topic, keys),
      subscribe: (topic, drop) => {
        const unsubscribe = this.local.subscribe(topic, drop);
        this.listen(topic);
        return unsubscribe;
      },
    };
  }

  limiter(opts: { keyPrefix: string; points: number; duration: number }) {
    return new RateLimiterRedis({
      storeClient: this.client,
      keyPrefix: `${this.o.prefix}:rl:${opts.keyPrefix}`,
      points: opts.points,
      duration: opts.duration,
      rejectIfRedisNotReady: true,
      insuranceLimiter: new RateLimiterMemory({
        keyPrefix: `insurance:${opts.keyPrefix}`,
        points: Math.max(1, Math.floor(opts.points / this.o.replicas)),
        duration: opts.duration,
      }),
    });
  }

  /**
   * After a reconnect: the connection has no subscription left, and what was published meanwhile is lost to this
   * replica. Every topic is subscribed again, one SUBSCRIBE per channel (a topic an ACL now refuses must not hold
   * back the others, and goes back to `listen`'s retries), and once each is answered (Redis answers one
   * connection in order) everything cached is dropped: a cache refilled in between cannot keep an entry a drop
   * published before the subscriptions were back would have removed. The drop is made whatever the answers
   * (dropping is always safe; a connection lost again comes back here).
   */
  private resubscribed(): void {
    const topics = [...this.listening.entries()];
    void Promise.allSettled(topics.map(([topic]) => this.subscriber.subscribe(this.channel(topic)))).then((answers) => {
      if (this.closed) return;
      answers.forEach((answer, i) => {
        const [topic, listened] = topics[i]!;
        if (answer.status === 'fulfilled' || this.listening.get(topic) !== listened) return;
        this.listening.delete(topic);
        this.failed(topic, answer.reason);
      });
      this.o.logger.info('cache-drop subscriptions are back: dropping every cached entry');
      this.local.deliverAll();
    });
  }

  private channel(topic: string): string {
    return this.channelPrefix + topic;
  }

  /**
   * Subscribes to a topic's channel once; until the subscription is in place a drop may be missed, so once it is,
   * the topic's entries are dropped here. A SUBSCRIBE that fails (refused by an ACL that does not allow the
   * channel, or its connection away) is tried again every second, never given up on (`failed`).
   */
  private listen(topic: string): void {
    if (this.listening.has(topic)) return;
    const listened: Promise<void> = this.subscriber.subscribe(this.channel(topic)).then(
      () => {
        const failed = this.failedSubscribes.get(topic);
        if (failed) this.o.logger.info({ topic, failed }, 'subscribed to cache drops after failed attempts');
        this.failedSubscribes.delete(topic);
        this.local.deliver(topic);
      },
      (err: unknown) => {
        if (this.listening.get(topic) !== listened) return; // a reconnect took the topic over meanwhile
        this.listening.delete(topic);
        this.failed(topic, err);
      },
    );
    this.listening.set(topic, listened);
  }

  /**
   * A topic's SUBSCRIBE failed: it is tried again in a second. The first failure in a row is a warning and so is
   * every 60th, the others are debug lines (one a second would flood the log); the subscription that finally goes
   * through says after how many. Nothing once closed.
   */
  private failed(topic: string, err: unknown): void {
    if (this.closed) return;
    const failed = (this.failedSubscribes.get(topic) ?? 0) + 1;
    this.failedSubscribes.set(topic, failed);
    this.o.logger[failed % 60 === 1 ? 'warn' : 'debug'](
      { err: err instanceof Error ? err.message : String(err), topic, failed },
      'could not subscribe to cache drops: this replica hears them only after the TTL until it can (trying again every second)',
    );
    setTimeout(() => !this.closed && this.listen(topic), RETRY_SUBSCRIBE_MS).unref();
  }

  private async publish(topic: string, keys?: readonly string[]): Promise<void> {
    this.local.deliver(topic, keys);
    const drop: Drop = { from: this.self, topic, ...(keys ? { keys: [...keys] } : {}) };
    try {
      await this.client.publish(this.channel(topic), JSON.stringify(drop));
    } catch (err) {
      // The other replicas drop everything when their subscription comes back, or at the TTL.
      this.o.logger.warn(
        { err: err instanceof Error ? err.message : String(err), topic },
        'a cache drop did not reach the other replicas: they serve the entry until its TTL',
      );
    }
  }

  /** Resolves once both connections (counters and drops) and the subscriptions asked so far are in place, or after `timeoutMs` (start-up waits on it, bounded). */
  async ready(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const settled = this.connected.then(() => Promise.all(this.listening.values()));
    await Promise.race([settled, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Each connection that looks ready must answer a PING within the command timeout, else it is dropped (once: it
   * is not probed again until its socket has closed). One miss is not enough: a stall of this process's own event
   * loop (a long GC, a busy handler) past the timeout lets the timers fire before the socket is read, so an answer
   * that came in time is judged missing. A second PING right after tells the two apart: it is answered at once
   * when only the loop was late. A loop that stays that late is not told apart, but then every command times out
   * on its own anyway. Under a freeze the counters' connection goes within about 1.5 s, the drops' within 2 s.
   */
  private async probe(): Promise<void> {
    for (const [connection, name] of [
      [this.client, 'counters'],
      [this.subscriber, 'drops'],
    ] as const) {
      if (!live(connection)) continue;
      if ((await this.answers(connection)) || (await this.answers(connection))) continue;
      if (!live(connection)) continue;
      this.o.logger.warn(
        { connection: name },
        'shared-state redis does not answer: reconnecting; meanwhile throttles use their in-memory insurance and cache drops wait',
      );
      connection.disconnect(true);
    }
  }

  /** Whether a PING on the connection is answered within the command timeout. */
  private async answers(connection: Redis): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([
      connection.ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.o.commandTimeoutMs))),
    ]);
    clearTimeout(timer);
    return answered;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.watchdog);
    this.subscriber.disconnect();
    this.client.disconnect();
  }
}
