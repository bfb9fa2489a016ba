import { RateLimiterMemory, type RateLimiterAbstract } from 'rate-limiter-flexible';

/** A counter per key within a window (rate-limiter-flexible's), shared by every replica of the service where it can be. */
export type Limiter = RateLimiterAbstract;

export interface LimiterOptions {
  /** Unique per purpose: the counters of two limiters never mix. */
  keyPrefix: string;
  /** Points per key within the window, across every replica. */
  points: number;
  /** The window, in seconds. */
  duration: number;
}

/**
 * Cache drops every replica hears. `publish` drops `keys` of `topic` (every
 * key when none are given) in this process before it returns, and in every
 * other replica as soon as the message reaches it; a subscriber also hears a
 * drop of everything whenever its replica may have missed messages (a lost
 * subscription), so an entry is never served past a change it did not hear
 * of for longer than its TTL.
 */
export interface Invalidations {
  publish(topic: string, keys?: readonly string[]): Promise<void>;
  /** Returns the unsubscribe. */
  subscribe(topic: string, drop: (keys?: readonly string[]) => void): () => void;
}

/** What replicas of a service share: throttles and cache drops. The kernel gives it every module (`kernel.shared`). */
export interface SharedState {
  /** `'redis'` when the counters and drops go through Redis; `'process'` when they stay in this process. */
  readonly kind: 'redis' | 'process';
  limiter(opts: LimiterOptions): Limiter;
  readonly invalidations: Invalidations;
  /** Resolves once the counters are shared and the drops asked for so far can be heard from the other replicas, or after `timeoutMs`: a process waits on it before it takes requests. */
  ready(timeoutMs?: number): Promise<void>;
}

/** Drops delivered to this process's subscribers only, synchronously. */
export class LocalInvalidations implements Invalidations {
  private readonly topics = new Map<string, Set<(keys?: readonly string[]) => void>>();

  publish(topic: string, keys?: readonly string[]): Promise<void> {
    this.deliver(topic, keys);
    return Promise.resolve();
  }

  subscribe(topic: string, drop: (keys?: readonly string[]) => void): () => void {
    let subscribers = this.topics.get(topic);
    if (!subscribers) this.topics.set(topic, (subscribers = new Set()));
    subscribers.add(drop);
    return () => void subscribers.delete(drop);
  }

  /** Hands a drop to this process's subscribers of `topic`. */
  deliver(topic: string, keys?: readonly string[]): void {
    for (const drop of this.topics.get(topic) ?? []) drop(keys);
  }

  /** Every subscriber drops everything (its replica may have missed drops). */
  deliverAll(): void {
    for (const subscribers of this.topics.values()) for (const drop of subscribers) drop(undefined);
  }
}

/** One process, no Redis: counters in memory, drops in process. What a single replica needs, and all it gets without REDIS_URL. */
export function processSharedState(): SharedState {
  return {
    kind: 'process',
    limiter: (opts) => new RateLimiterMemory(opts),
    invalidations: new LocalInvalidations(),
    ready: () => Promise.resolve(),
  };
}
