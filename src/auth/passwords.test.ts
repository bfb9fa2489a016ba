import bcrypt from 'bcryptjs';
import { Piscina } from 'piscina';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { ServiceUnavailable } from '../../kit/errors.ts';
import { createPasswordPool } from './passwords.ts';

const pool = createPasswordPool({ cost: 8, workers: 1, queueMax: 100 });
afterAll(() => pool.close());

describe('the password pool', () => {
  it('offers a dummy hash of the configured cost that no password matches', async () => {
    expect(pool.dummy.startsWith('$2b$08$')).toBe(true);
    expect(await pool.verify('', pool.dummy)).toBe(false);
    expect(await pool.verify('toko-dummy-password-nobody-knows', pool.dummy)).toBe(false);
  });

  it('makes the dummy cost what a real hash costs: the same bcrypt rounds', async () => {
    const real = await pool.hash('rahasia-sekali');
    expect(bcrypt.getRounds(pool.dummy)).toBe(bcrypt.getRounds(real));
    expect(bcrypt.getSalt(pool.dummy)).toHaveLength(bcrypt.getSalt(real).length);
  });
});

describe('letting the threads go', () => {
  it('ends its thread on release once idle, leaves a busy pool alone, and starts a thread again for the next password', async () => {
    const lean = createPasswordPool({ cost: 8, workers: 1, queueMax: 10 });
    try {
      expect(lean.threads()).toBe(0);
      const hash = await lean.hash('start-up-admin');
      expect(lean.threads()).toBe(1);
      // A check in progress keeps its thread: release() does not cut it short.
      const checking = lean.verify('start-up-admin', hash);
      await lean.release();
      expect(await checking).toBe(true);
      expect(lean.threads()).toBe(1);
      await lean.release();
      expect(lean.threads()).toBe(0);
      expect(await lean.verify('start-up-admin', hash)).toBe(true);
      expect(await lean.verify('another-password', hash)).toBe(false);
      expect(lean.threads()).toBe(1);
    } finally {
      await lean.close();
    }
    await expect(lean.verify('start-up-admin', '$2b$08$x')).rejects.toThrow(/closed/);
  });

  it('returns from close() only once a release still ending its thread has ended it', async () => {
    // Piscina's destroy() resolves once its threads have exited: close() must wait for the one release() started.
    const ended: boolean[] = [];
    const original = Piscina.prototype.destroy;
    const destroy = vi.spyOn(Piscina.prototype, 'destroy').mockImplementation(async function (this: Piscina) {
      const i = ended.push(false) - 1;
      await original.call(this);
      ended[i] = true;
    });
    const lean = createPasswordPool({ cost: 4, workers: 1, queueMax: 10 });
    try {
      await lean.hash('start-up-admin');
      const released = lean.release();
      await lean.close();
      expect(ended).toEqual([true]);
      await released;
    } finally {
      destroy.mockRestore();
    }
  });
});

describe('a burst of sign-ups', () => {
  it('never takes every worker: a login goes ahead of queued hashes, and hashes past the queue are refused with 503 and Retry-After', async () => {
    const burst = createPasswordPool({ cost: 10, workers: 2, queueMax: 10 });
    try {
      await burst.hash('warm-up-password');
      // The login checks a cost-4 hash, 64 times cheaper than a sign-up's cost-10 one: served by the worker left free,
      // it is answered long before a second hash ends however loaded the machine is; queued behind the hashes, it would
      // wait for all eleven. The gap between the two outcomes, not the clock, is what the assertion reads.
      const hash = bcrypt.hashSync('warm-up-password', 4);
      let hashed = 0;
      const signUps = Array.from({ length: 40 }, (_, i) => burst.hash(`password-${i}`).then(() => hashed++));
      const outcomes = Promise.allSettled(signUps);
      // A login arriving now waits for at most the one hash in progress, not for the queue.
      expect(await burst.verify('warm-up-password', hash)).toBe(true);
      const doneWhenLoginAnswered = hashed;
      const settled = await outcomes;
      const refused = settled
        .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
        .map((r) => r.reason as ServiceUnavailable);
      // One hashing, ten waiting: the other 29 are refused at once.
      expect(refused).toHaveLength(29);
      for (const err of refused) {
        expect(err).toBeInstanceOf(ServiceUnavailable);
        expect(err.headers['Retry-After']).toBe('2');
      }
      expect(hashed).toBe(11);
      expect(doneWhenLoginAnswered).toBeLessThanOrEqual(2);
    } finally {
      await burst.close();
    }
  });
});
