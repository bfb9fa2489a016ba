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
export function createPasswordPool(opts: PasswordPoolOptions): PasswordPool {
  const o = { ...opts };
  if (o.cost < 4 || o.cost > 31) throw new Error('cost must be between 4 and 31');
  if (o.workers < 1) throw new Error('workers must be at least 1');
  const pool = new Piscina({
    filename: new URL('./password.worker.mjs', import.meta.url).href,
    minThreads: 1,
    maxThreads: o.workers,
    idleTimeout: 30_000,
  });
  return {
    hash: (password) => pool.run({ op: 'hash', password, cost: o.cost }) as Promise<string>,
    verify: (password, hash) => pool.run({ op: 'verify', password, hash }) as Promise<boolean>,
    close: () => pool.destroy(),
  };
}
