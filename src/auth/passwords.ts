import { Piscina } from 'piscina';
import type { PasswordHasher } from '../kit/auth.ts';

export interface PasswordPoolOptions {
  cost: number;
  workers: number;
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
  // No thread until the first password is checked, and none left after 30 s without one.
  const pool = new Piscina({
    filename: new URL('./password.worker.mjs', import.meta.url).href,
    minThreads: 0,
    maxThreads: o.workers,
    idleTimeout: 30_000,
  });
  return {
    dummy: `$2b$${String(o.cost).padStart(2, '0')}$${DUMMY_SALT_AND_HASH}`,
    hash: (password) => pool.run({ op: 'hash', password, cost: o.cost }) as Promise<string>,
    verify: (password, hash) => pool.run({ op: 'verify', password, hash }) as Promise<boolean>,
    close: () => pool.destroy(),
  };
}
