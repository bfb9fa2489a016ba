import { CONTROL_OR_FORMAT, carriesAddress } from '../../../kit/values.ts';

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

/**
 * A customer's name as a greeting may show it: control and formatting
 * characters become spaces, runs of spaces one, at most 60 characters; a name
 * that still carries an address (a link, a domain, an e-mail) is not shown (the fallback is). Names
 * are refused like this at registration; this keeps older ones in line.
 */
export function greetingName(fullName: string, fallback: string): string {
  const flat = fullName
    .replace(new RegExp(CONTROL_OR_FORMAT.source, 'gu'), ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 60)
    .trim();
  if (!flat || carriesAddress(flat)) return fallback;
  return flat;
}
