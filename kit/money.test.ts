import { describe, expect, it } from 'vitest';
import { formatMoney, minorDigits } from './money.ts';

describe('formatMoney', () => {
  it('shows rupiah the Indonesian way, from minor units', () => {
    expect(minorDigits('IDR')).toBe(2);
    expect(formatMoney(123_456_700, 'IDR', 'id-ID')).toBe('Rp 1.234.567');
    expect(formatMoney(1_500_000, 'IDR', 'id-ID')).toBe('Rp 15.000');
    expect(formatMoney(1_550, 'IDR', 'id-ID')).toBe('Rp 15,50');
  });

  it('follows the currency and locale', () => {
    expect(formatMoney(1_234_56, 'USD', 'en-US')).toBe('$1,234.56');
    expect(formatMoney(1500, 'JPY', 'ja-JP')).toMatch(/1,500/);
  });
});
