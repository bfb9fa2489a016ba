import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import GithubSlugger from 'github-slugger';
import MarkdownIt, { type Token } from 'markdown-it';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '..');
const PAGES = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const read = (page: string) => readFileSync(path.join(ROOT, page), 'utf8');
const markdown = new MarkdownIt();

const textOf = (inline: Token | undefined) =>
  (inline?.children ?? [])
    .filter((t) => t.type === 'text' || t.type === 'code_inline')
    .map((t) => t.content)
    .join('');

/** A page's heading anchors, as GitHub makes them, and the links it holds (code blocks and spans are not links). */
function outline(text: string): { anchors: Set<string>; links: string[] } {
  const tokens = markdown.parse(text, {});
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  const links: string[] = [];
  tokens.forEach((t, i) => {
    if (t.type === 'heading_open') anchors.add(slugger.slug(textOf(tokens[i + 1])));
    for (const c of t.children ?? []) if (c.type === 'link_open') links.push(String(c.attrGet('href') ?? ''));
  });
  return { anchors, links };
}

/** Why a relative link from `page` leads nowhere, or undefined when it leads somewhere. */
function broken(page: string, href: string): string | undefined {
  const [target = '', anchor] = href.split('#') as [string, string | undefined];
  const file = target === '' ? page : path.posix.join(path.posix.dirname(page), decodeURI(target));
  if (file.startsWith('..') || !existsSync(path.join(ROOT, file))) return `${file} does not exist`;
  if (anchor === undefined) return undefined;
  if (!file.endsWith('.md') || statSync(path.join(ROOT, file)).isDirectory())
    return `#${anchor} in a file that is not a page`;
  return outline(read(file)).anchors.has(anchor) ? undefined : `${file} has no heading #${anchor}`;
}

describe('README and docs/', () => {
  it('find the headings and links the way GitHub does', () => {
    const { anchors, links } = outline(
      '# toko\n## Faults and abuse: `npm run test:faults`\n## Notes\n## Notes\n' +
        'See [a](docs/a.md#x) and <https://example.com>, not `[b](c.md)`:\n\n```sh\n[d](e.md)\n```\n',
    );
    expect([...anchors]).toEqual(['toko', 'faults-and-abuse-npm-run-testfaults', 'notes', 'notes-1']);
    expect(links).toEqual(['docs/a.md#x', 'https://example.com']);
  });

  it('tell a broken link from a good one', () => {
    expect(broken('README.md', 'docs/api.md#a-walk-through-the-api')).toBeUndefined();
    expect(broken('docs/api.md', '#routes')).toBeUndefined();
    expect(broken('docs/api.md', '../README.md#read-on')).toBeUndefined();
    expect(broken('README.md', 'docs/nowhere.md')).toBe('docs/nowhere.md does not exist');
    expect(broken('docs/api.md', 'security.md#nowhere')).toBe('docs/security.md has no heading #nowhere');
  });

  for (const page of PAGES) {
    it(`${page}: every relative link leads to a file that exists, and every #anchor to a heading`, () => {
      const relative = outline(read(page)).links.filter((href) => !/^[a-z][a-z0-9+.-]*:/i.test(href));
      const problems = relative.map((href) => [href, broken(page, href)]).filter(([, why]) => why !== undefined);
      expect(problems).toEqual([]);
    });
  }

  it('README links every page of docs/', () => {
    const linked = new Set(outline(read('README.md')).links.map((href) => href.split('#')[0]));
    expect(PAGES.filter((p) => p.startsWith('docs/') && !linked.has(p))).toEqual([]);
  });

  it('README is one page with the two commands', () => {
    const readme = read('README.md');
    expect(readme).toContain('```sh\nnpm install && npm start\n```');
    expect(readme).toContain('```sh\nnpm test\n```');
    expect(readme.split('\n').length).toBeLessThan(200);
  });

  it('start-up and memory numbers have one source: docs/performance.md quotes the footprint results, README none of its own', () => {
    const page = read('docs/performance.md');
    const file = /On an idle machine \(`([^`]+-footprint\.json)`\)/.exec(page)?.[1];
    expect(file).toBeDefined();
    const { rows } = (
      JSON.parse(read(`bench/results/${file}`)) as {
        footprint: {
          rows: {
            topology: string;
            firstStartMs: number;
            restartMs: number;
            rssFirstStart: number;
            rssRestart: number;
            rssAfterLoad: number;
          }[];
        };
      }
    ).footprint;
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
    const label: Record<string, string> = {
      embedded: '`npm start`, embedded',
      postgres: '`npm start`, PostgreSQL',
      split: '`npm run split` (4 services, gateway, one embedded database)',
    };
    const lines = page.split('\n');
    for (const r of rows) {
      const row = lines.find((l) => l.startsWith(`| ${label[r.topology]} |`));
      expect(row, r.topology).toBe(
        `| ${label[r.topology]} | ${s(r.firstStartMs)} | ${s(r.restartMs)} | ${r.rssFirstStart} MiB | ${r.rssRestart} MiB | ${r.rssAfterLoad} MiB |`,
      );
    }
    const embedded = rows.find((r) => r.topology === 'embedded')!;
    const flat = page.replace(/\s+/g, ' ');
    expect(flat).toContain(`Start-up on this slower day is ${s(embedded.restartMs)} on restart`);
    expect(flat).toContain(`| ${s(embedded.firstStartMs)}, ${s(embedded.restartMs)} (this day);`);
    // README points to the page rather than quoting timings that drift from it.
    expect(read('README.md')).not.toMatch(/\d(\.\d+)? ?(s|ms|MiB)\b/);
  });
});
