import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

/** Polls `probe` until it returns something other than undefined, or fails at the deadline. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether a Redis answers at TEST_REDIS_URL; suites that need one are skipped with a notice when not. */
export const redisAnswers = () => redisAnswersAt(TEST_REDIS_URL);

/** A QUEUE_PREFIX of one suite's own, so its BullMQ keys can be told apart and removed (dropQueueKeys). */
export const testQueuePrefix = () => `tt${randomBytes(4).toString('hex')}`;

/** Deletes every BullMQ key of the queues named `<prefix>-*` (what a suite's app left in Redis); returns how many there were. */
export async function dropQueueKeys(prefix: string, url = TEST_REDIS_URL): Promise<number> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let removed = 0;
    for await (const keys of r.scanStream({ match: `bull:${prefix}-*`, count: 500 }) as AsyncIterable<string[]>) {
      if (keys.length > 0) removed += await r.del(...keys);
    }
    return removed;
  } finally {
    r.disconnect();
  }
}

export async function redisAnswersAt(url: string): Promise<boolean> {
  const r = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/**
 * Ports below Linux's ephemeral range (32768–60999 by default): a port the
 * kernel hands out for listen(0) lies inside that range, where any outgoing
 * connection (to PostgreSQL, Redis...) may take it as its local port between
 * this probe and the service's own bind, and the service then dies with
 * EADDRINUSE. Outside it, only another listener can take it.
 */
const PORT_RANGE = { low: 10_000, high: 32_000 };

function portFree(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = createServer().once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` distinct free ports on 127.0.0.1, outside the ephemeral range. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) {
    const port = PORT_RANGE.low + Math.floor(Math.random() * (PORT_RANGE.high - PORT_RANGE.low));
    if (!ports.has(port) && (await portFree(port))) ports.add(port);
  }
  return [...ports];
}

/** A base port whose next `n` ports are free (the split launcher puts its services at base+1, base+2...). */
export async function freePortBlock(n: number): Promise<number> {
  for (;;) {
    const base = PORT_RANGE.low + Math.floor(Math.random() * (PORT_RANGE.high - PORT_RANGE.low - n));
    if ((await Promise.all(Array.from({ length: n }, (_, i) => portFree(base + i + 1)))).every(Boolean)) return base;
  }
}
