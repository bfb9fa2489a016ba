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
  /**
   * Lets the threads go now rather than after the idle timeout, when nothing is being hashed or checked (a later
   * password starts a thread again). Start-up calls it once the admin account is checked: a bcrypt thread is an
   * isolate of its own (9–12 MiB of RSS here), and a process that has just started has no login to keep it for.
   */
  release(): Promise<void>;
  /** Worker threads alive now. */
  threads(): number;
  close(): Promise<void>;
}

/**
 * The salt and hash of a bcrypt hash of a password nobody has: under any cost
 * prefix, comparing against it runs that cost's full key setup and fails.
 */
const DUMMY_SALT_AND_HASH = 'L25dCyqxn4T.SUaIuAC84.8jrw7GpT/CUPd4yzusam3QTPvgep7Fi';

const busy = () =>
  new ServiceUnavailable('Too many passwords are being checked right now; try again shortly', {
    retryAfterSeconds: 2,
  });

/**
 * The bcrypt threads: none until the first password is checked, and none left after 30 s without one or after
 * `release()` (a later task starts them again). A release leaves a pool with tasks queued or running alone.
 */
function bcryptThreads(o: PasswordPoolOptions) {
  let pool: Piscina | undefined;
  let closed = false;
  let pending = 0;
  /** Pools being destroyed: close() waits for a release's too, so no thread outlives it. */
  const ending = new Set<Promise<void>>();
  const letGo = async () => {
    const old = pool;
    pool = undefined;
    if (old) {
      const end = old.destroy();
      ending.add(end);
      void end.finally(() => ending.delete(end));
    }
    await Promise.all(ending);
  };
  return {
    async run<T>(task: object): Promise<T> {
      if (closed) throw new Error('the password pool is closed');
      pool ??= new Piscina({
        filename: new URL('./password.worker.mjs', import.meta.url).href,
        minThreads: 0,
        maxThreads: o.workers,
        idleTimeout: 30_000,
        maxQueue: o.queueMax,
      });
      pending++;
      try {
        return (await pool.run(task)) as T;
      } catch (err) {
        // piscina refuses a task past maxQueue: the pool is saturated, not broken.
        if (err instanceof Error && /queue is at limit/i.test(err.message)) throw busy();
        throw err;
      } finally {
        pending--;
      }
    },
    release: () => (pending === 0 ? letGo() : Promise.resolve()),
    threads: () => pool?.threads.length ?? 0,
    close: () => {
      closed = true;
      return letGo();
    },
  };
}

/** bcrypt in a worker-thread pool sized to the cores, so a burst of logins uses every core. */
export function createPasswordPool(opts: PasswordPoolOptions): PasswordPool {
  const o = { ...opts };
  if (o.cost < 4 || o.cost > 31) throw new Error('cost must be between 4 and 31');
  if (o.workers < 1) throw new Error('workers must be at least 1');
  if (o.queueMax < 1) throw new Error('queueMax must be at least 1');
  const threads = bcryptThreads(o);
  // New hashes (sign-ups) never take every worker: one is always left for logins, which then wait for one hash at most.
  const hashSlots = Math.max(1, o.workers - 1);
  let hashing = 0;
  const waiting: (() => void)[] = [];
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
  return {
    dummy: `$2b$${String(o.cost).padStart(2, '0')}$${DUMMY_SALT_AND_HASH}`,
    hash: (password) => hashTurn(() => threads.run<string>({ op: 'hash', password, cost: o.cost })),
    verify: (password, hash) => threads.run<boolean>({ op: 'verify', password, hash }),
    release: threads.release,
    threads: threads.threads,
    close: threads.close,
  };
}
