import { describe, expect, it } from 'vitest';
import { ADDRESS_CHECK_MAX, carriesAddress } from './values.ts';

describe('carriesAddress', () => {
  it('finds links, bare domains of any top-level domain, e-mail and IP addresses', () => {
    for (const text of [
      'https://evil.example/login',
      'lihat www.hadiah',
      'toko-verify.com',
      'Verifikasi di toko-verify.xyz segera',
      'cs@toko-support.id',
      'ke 10.0.0.1',
      'javascript://x',
    ]) {
      expect(carriesAddress(text), text).toBe(true);
    }
  });

  it('leaves names alone, titles and initials with dots included', () => {
    for (const text of [
      'Siti Rahmawati',
      'Ir. Joko Widodo',
      'Hj. Siti',
      'A. Yani',
      'M.Ali',
      'Budi S.Kom',
      'Rp 15.000',
      'siti.rahma',
      'toko_verify',
    ]) {
      expect(carriesAddress(text), text).toBe(false);
    }
  });

  it('reads no more than it is meant to: longer text is refused unread', () => {
    expect(carriesAddress('a'.repeat(ADDRESS_CHECK_MAX))).toBe(false);
    expect(carriesAddress('a'.repeat(ADDRESS_CHECK_MAX + 1))).toBe(true);
  });
});
