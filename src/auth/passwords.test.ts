import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { createPasswordPool } from './passwords.ts';

const pool = createPasswordPool({ cost: 8, workers: 1 });
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
