import { Piscina } from 'piscina';
import type { PasswordHasher } from '../../kit/auth.ts';
import { ServiceUnavailable } from '../../kit/errors.ts';

export interface PasswordPoolOptions {
  cost: number;
  workers: number;
  /** Checks and new hashes allowed to wait for a worker; past it, 503 with Retry-After. */
  queueMax: number;
}

export interface PasswordPool extends PasswordHasher {
  close(): Promise<void>;
}

/** bcrypt in a worker-thread pool sized to the cores, so a burst of logins uses every core. */
/**
 * The salt and hash of a bcrypt hash of a password nobody has: under any cost
 * prefix, comparing against it runs that cost's full key setup and fails.
 */
const DUMMY_SALT_AND_HASH = 'L25dCyqxn4T.SUaIuAC84.8jrw7GpT/CUPd4yzusam3QTPvgep7Fi';

export function createPasswordPool(opts: PasswordPoolOptions): PasswordPool {
  const o = { ...opts };
  if (o.cost < 4 || o.cost > 31) throw new Error('cost must be between 4 and 31');
  if (o.workers < 1) throw new Error('workers must be at least 1');
  if (o.queueMax < 1) throw new Error('queueMax must be at least 1');
  // No thread until the first password is checked, and none left after 30 s without one.
  const pool = new Piscina({
    filename: new URL('./password.worker.mjs', import.meta.url).href,
    minThreads: 0,
    maxThreads: o.workers,
    idleTimeout: 30_000,
    maxQueue: o.queueMax,
  });
  // New hashes (sign-ups) never take every worker: one is always left for logins, which then wait for one hash at most.
  const hashSlots = Math.max(1, o.workers - 1);
  let hashing = 0;
  const waiting: (() => void)[] = [];
  const busy = () =>
    new ServiceUnavailable('Too many passwords are being checked right now; try again shortly', {
      retryAfterSeconds: 2,
    });
  const hashTurn = async <T>(work: () => Promise<T>): Promise<T> => {
    if (hashing >= hashSlots) {
      if (waiting.length >= o.queueMax) throw busy();
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else hashing++;
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else hashing--;
    }
  };
  const run = <T>(task: object): Promise<T> =>
    (pool.run(task) as Promise<T>).catch((err: unknown) => {
      // piscina refuses a task past maxQueue: the pool is saturated, not broken.
      if (err instanceof Error && /queue is at limit/i.test(err.message)) throw busy();
      throw err;
    });
  return {
    dummy: `$2b$${String(o.cost).padStart(2, '0')}$${DUMMY_SALT_AND_HASH}`,
    hash: (password) => hashTurn(() => run<string>({ op: 'hash', password, cost: o.cost })),
    verify: (password, hash) => run<boolean>({ op: 'verify', password, hash }),
    close: () => pool.destroy(),
  };
}
