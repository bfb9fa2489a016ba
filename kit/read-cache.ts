import { LRUCache } from 'lru-cache';
import type { Invalidations } from './shared.ts';

export interface ReadCacheOptions {
  /** How long an entry may be served; 0 turns the cache off (every read loads). */
  ttlMs: number;
  /** Entries kept at most. */
  max: number;
  /**
   * Replicas share the drops: `forget` publishes on `topic`, and a drop any
   * replica publishes there is made here too. Without it, other replicas may
   * serve an entry up to `ttlMs` old.
   */
  shared?: { invalidations: Invalidations; topic: string };
}

/**
 * A module's cache for hot reads, kept honest for the process that writes:
 * - `forget` (every write calls it) drops entries at once and starts a new
 *   generation, so a load begun before a write neither fills the cache nor is
 *   handed to anyone who asks after the write;
 * - reads that miss together share one load, so an entry expiring under load
 *   sends one query to the database, not one per waiting request.
 * With `shared`, every replica drops what any of them forgets, within
 * milliseconds (Redis pub/sub); the TTL stays the backstop for a drop that
 * did not arrive.
 */
export class ReadCache<T extends object> {
  private readonly entries: LRUCache<string, T> | undefined;
  private readonly loading = new Map<string, Promise<T>>();
  private generation = 0;
  private readonly shared: ReadCacheOptions['shared'];

  constructor(opts: ReadCacheOptions) {
    if (opts.ttlMs < 0) throw new Error('ttlMs must not be negative');
    if (opts.max < 1) throw new Error('max must be at least 1');
    if (opts.ttlMs > 0) this.entries = new LRUCache({ max: opts.max, ttl: opts.ttlMs });
    this.shared = opts.shared;
    this.shared?.invalidations.subscribe(this.shared.topic, (keys) => this.drop(keys));
  }

  /** The cached value, if any (no load). */
  peek(key: string): T | undefined {
    return this.entries?.get(key);
  }

  /** Fills an entry from a load made elsewhere (a batch read), unless a write happened since `since` (a `generationNow()`). */
  fill(key: string, value: T, since: number): void {
    if (this.entries && since === this.generation) this.entries.set(key, value);
  }

  generationNow(): number {
    return this.generation;
  }

  /** From the cache, else from `load` — shared with everyone missing the same key meanwhile — then cached unless a write intervened. */
  get(key: string, load: () => Promise<T>): Promise<T> {
    const entries = this.entries;
    if (!entries) return load();
    const hit = entries.get(key);
    if (hit) return Promise.resolve(hit);
    const generation = this.generation;
    const slot = `${generation}\u0000${key}`;
    const pending = this.loading.get(slot);
    if (pending) return pending;
    const loaded = load()
      .then((value) => {
        if (generation === this.generation) entries.set(key, value);
        return value;
      })
      .finally(() => this.loading.delete(slot));
    this.loading.set(slot, loaded);
    return loaded;
  }

  /**
   * Drops `keys` (every entry when none are given) here at once, and on every
   * other replica when shared; resolves when the drop has been published
   * (never rejects: a drop that cannot be published is logged, and the TTL
   * stays the limit).
   */
  forget(keys?: string[]): Promise<void> {
    // Publishing hands the drop to this process's subscribers, this cache among them, before it returns.
    if (this.shared) return this.shared.invalidations.publish(this.shared.topic, keys);
    this.drop(keys);
    return Promise.resolve();
  }

  /** Drops `keys` (every entry when none are given) in this process and starts a new generation. */
  private drop(keys?: readonly string[]): void {
    this.generation++;
    if (!this.entries) return;
    if (keys) for (const k of keys) this.entries.delete(k);
    else this.entries.clear();
  }
}
