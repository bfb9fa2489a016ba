/**
 * ISO 4217 exponents that are not 2. (Intl's CLDR data is not ISO: it shows
 * IDR with no decimals, but ISO 4217, and so toko's minor units, give it 2.)
 */
const EXPONENTS: Record<string, number> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};

/** Decimal places of a currency's minor unit (ISO 4217): IDR 2, JPY 0, KWD 3. */
export function minorDigits(currency: string): number {
  return EXPONENTS[currency] ?? 2;
}

/** Formatters by locale, currency and whether fractions show: building one costs far more than using it. */
const FORMATTERS = new Map<string, Intl.NumberFormat>();

function formatter(locale: string, currency: string, digits: number, whole: boolean): Intl.NumberFormat {
  const key = `${locale} ${currency} ${whole}`;
  let f = FORMATTERS.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, {
      style: 'currency',
      currency,
      minimumFractionDigits: whole ? 0 : digits,
      maximumFractionDigits: digits,
    });
    FORMATTERS.set(key, f);
  }
  return f;
}

/**
 * Integer minor units as people read them: `formatMoney(123456700, 'IDR', 'id-ID')`
 * is `Rp 1.234.567`. Fractions are shown only when there are any.
 */
export function formatMoney(minor: number, currency: string, locale: string): string {
  const digits = minorDigits(currency);
  const amount = minor / 10 ** digits;
  return formatter(locale, currency, digits, Number.isInteger(amount))
    .format(amount)
    .replace(/\u00a0/g, ' ');
}
