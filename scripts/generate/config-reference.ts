/**
 * docs/configuration.md: every variable toko reads, from the schemas that
 * read it — the kernel's (src/config.ts) and each module's `settings` — with
 * its default and what it means (the schema's `.meta({ description })`).
 */
import { SETTINGS, type Setting } from '../../src/config.ts';
import { MODULE_NAMES } from '../../src/registry.ts';

const INTRO = `<!-- Generated from the configuration schemas (src/config.ts and each module's settings in modules/*/index.ts) by \`npm run generate\`: edit the schemas, not this file. -->
# Configuration

Everything is read from the environment once, at start-up, and validated. A
bad value stops the process with one line naming the variable and what it
expects, e.g. \`toko: invalid configuration: PORT: expected a whole number from 0 to 65535\`.
A blank value counts as unset.

Each row comes from the schema that reads the variable: its default is the
schema's own (or, where that is not a plain value, the schema's
\`.meta({ default })\` says it in words), its meaning the schema's
\`.meta({ description })\`. To add a variable, add it with its description to
the kernel's schema in \`src/config.ts\` or to a module's \`settings\` in its
\`index.ts\`, then run \`npm run generate\`.`;

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
const code = (value: unknown) => `\`${String(value)}\``;

/** What a variable is when unset: the schema's `.meta({ default })` in words, else what the schema reads from nothing. */
export function defaultOf(schema: Setting['schema']): string {
  const stated = schema.meta()?.default;
  if (typeof stated === 'string') return stated;
  const read = schema.safeParse(undefined);
  if (!read.success) return 'required';
  const value: unknown = read.data;
  if (value === undefined) return '—';
  if (Array.isArray(value)) return value.length > 0 ? value.map(code).join(', ') : '—';
  if (typeof value === 'object' && value !== null)
    return Object.keys(value).length > 0 ? code(JSON.stringify(value)) : '—';
  return code(value);
}

/** What a variable means: its schema's description (empty when it has none; the configuration tests ask for one). */
export const meaningOf = (schema: Setting['schema']): string => schema.meta()?.description ?? '';

function table(settings: Setting[]): string {
  return [
    '| variable | default | meaning |',
    '| --- | --- | --- |',
    ...settings.map((s) => `| \`${s.name}\` | ${cell(defaultOf(s.schema))} | ${cell(meaningOf(s.schema))} |`),
  ].join('\n');
}

function section(owner: Setting['owner'], settings: Setting[]): string {
  const [title, where] =
    owner === 'kernel'
      ? ['The kernel', 'Read by every process, whichever modules it hosts (`src/config.ts`).']
      : [
          `The ${owner} module`,
          `Used by the ${owner} module wherever it runs (its \`settings\` in \`modules/${owner}/index.ts\`).`,
        ];
  return `## ${title}\n\n${where}\n\n${table(settings)}`;
}

export function renderConfigReference(): string {
  const owners = ['kernel' as const, ...MODULE_NAMES];
  const sections = owners
    .map((owner) => [owner, SETTINGS.filter((s) => s.owner === owner)] as const)
    .filter(([, settings]) => settings.length > 0)
    .map(([owner, settings]) => section(owner, settings));
  return `${[INTRO, ...sections].join('\n\n')}\n`;
}
