export const LOCALES = ['id', 'en'] as const;
export type Locale = (typeof LOCALES)[number];

export interface Rendered {
  subject: string;
  text: string;
}

/** One message in every supported language. */
export type Template<D> = Record<Locale, (data: D) => Rendered>;

/** BCP 47 tags for number and money formatting. */
export const INTL_LOCALE: Record<Locale, string> = { id: 'id-ID', en: 'en-GB' };
