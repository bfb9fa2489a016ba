import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp } from '../helpers/app.ts';
import { call } from '../helpers/http.ts';
import { startSplitRig } from '../helpers/split.ts';
import { FAST_RECOVERY, FAST_SPLIT, Shop, report } from './harness.ts';

/**
 * Timing fuzz: one request must never freeze the process. Every string field
 * of every endpoint of `/openapi.json` — body fields at the body limit's
 * worth, query parameters and path ids at what the headers allow — is fed
 * long runs of letters, digits, dots, slashes, colons and their mixtures (the
 * shapes that make a careless pattern backtrack), and each answer must come
 * within 200 ms (a wide margin over the few milliseconds it takes), never 5xx.
 */
const LIMIT_MS = 200;
// The default BODY_LIMIT is 100kb: stay just under it so the body is parsed and validated, not refused as too large.
const BODY_CHARS = 100 * 1024 - 2048;
// Node accepts 16 KiB of headers, nginx 8 KiB per line: a query value this long reaches the route in both topologies.
const QUERY_CHARS = 7000;
const UNITS = [
  'a',
  '7',
  '.',
  '/',
  ':',
  'a.',
  'a/',
  'a:',
  'a1.',
  'ab.cd/',
  'a://',
  'www.',
  'a@',
  'a-',
  'a.a@a.',
  '%',
  '%_',
];

const fill = (unit: string, n: number) => unit.repeat(Math.ceil(n / unit.length)).slice(0, n);

interface Schema {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  example?: unknown;
}
interface Param {
  in: string;
  name: string;
  schema?: Schema;
}
interface Op {
  parameters?: Param[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}
interface Doc {
  paths: Record<string, Record<string, Op>>;
  components: { schemas: Record<string, Schema> };
}

/** Paths (`['items', 0, 'productId']`) to every string a body of this schema can carry, resolving references. */
function stringPaths(doc: Doc, schema: Schema, at: (string | number)[] = [], depth = 0): (string | number)[][] {
  if (depth > 6) return [];
  if (schema.$ref) return stringPaths(doc, doc.components.schemas[schema.$ref.split('/').at(-1)!]!, at, depth + 1);
  const alternatives = [...(schema.anyOf ?? []), ...(schema.oneOf ?? []), ...(schema.allOf ?? [])];
  if (alternatives.length) return alternatives.flatMap((s) => stringPaths(doc, s, at, depth + 1));
  const types = [schema.type ?? []].flat();
  if (types.includes('string')) return [at];
  if (types.includes('array') && schema.items) return stringPaths(doc, schema.items, [...at, 0], depth + 1);
  return Object.entries(schema.properties ?? {}).flatMap(([k, s]) => stringPaths(doc, s, [...at, k], depth + 1));
}

/** A copy of `value` with `path` set to `leaf`, building objects and arrays on the way. */
function setAt(value: unknown, path: (string | number)[], leaf: unknown): unknown {
  if (path.length === 0) return leaf;
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const arr = Array.isArray(value) ? [...(value as unknown[])] : [];
    arr[head] = setAt(arr[head] ?? {}, rest, leaf);
    return arr;
  }
  const obj =
    value && typeof value === 'object' && !Array.isArray(value) ? { ...(value as Record<string, unknown>) } : {};
  obj[head!] = setAt(obj[head!], rest, leaf);
  return obj;
}

function exampleOf(doc: Doc, schema: Schema): unknown {
  if (schema.$ref) return doc.components.schemas[schema.$ref.split('/').at(-1)!]?.example ?? {};
  return schema.example ?? {};
}

const topologies = [
  {
    name: 'one process',
    start: async () => {
      const app = await startTestApp({ ...FAST_RECOVERY, LOG_LEVEL: 'error' });
      return { url: app.url, close: () => app.close() };
    },
  },
  {
    name: 'split behind the gateway',
    start: async () => {
      const rig = await startSplitRig({ ...FAST_SPLIT, LOG_LEVEL: 'error' });
      return { url: rig.url, close: () => rig.close() };
    },
  },
];

describe.each(topologies)('timing fuzz: $name', ({ name, start }) => {
  let t: { url: string; close(): Promise<void> };
  const shop = new Shop(() => t.url);
  let admin = '';
  let productId = '';
  let orderId = '';

  beforeAll(async () => {
    t = await start();
    admin = await shop.admin();
    productId = await shop.product(admin, 1000, 'Timing Target');
    orderId = (await shop.place(admin, [{ productId, quantity: 1 }])).body.id;
  }, 120_000);
  afterAll(() => t?.close());

  it(`answers every string field of every endpoint, fed long runs of pattern characters, within ${LIMIT_MS} ms and never 5xx`, async () => {
    const doc = (await call<Doc>(t.url, 'GET', '/openapi.json')).body;
    const slow: string[] = [];
    const failed: string[] = [];
    let sent = 0;
    let worst = { ms: 0, what: '' };
    const time = async (what: string, method: string, p: string, raw?: string) => {
      const started = performance.now();
      const res = await call(t.url, method.toUpperCase(), p, {
        raw,
        token: admin,
        headers: raw === undefined ? {} : { 'content-type': 'application/json' },
      });
      const ms = performance.now() - started;
      sent++;
      if (ms > worst.ms) worst = { ms, what };
      if (ms > LIMIT_MS) slow.push(`${what} took ${Math.round(ms)} ms (${res.status})`);
      if (res.status >= 500 || res.status === 0) failed.push(`${what} → ${res.status} ${res.text.slice(0, 120)}`);
    };
    const pathFor = (template: string, id?: string) =>
      template.replace(
        /\{(\w+)\}/g,
        (_, param: string) =>
          id ?? (param === 'id' ? (template.startsWith('/api/v1/orders') ? orderId : productId) : 'user'),
      );

    for (const [template, ops] of Object.entries(doc.paths)) {
      // Bull Board is not JSON API; /metrics is not an endpoint anyone feeds input to.
      if (template.startsWith('/admin/queues') || template === '/metrics') continue;
      for (const [method, op] of Object.entries(ops)) {
        const media = op.requestBody?.content['application/json'];
        const example = media ? exampleOf(doc, media.schema) : undefined;
        for (const unit of UNITS) {
          for (const field of media ? stringPaths(doc, media.schema) : []) {
            const body = JSON.stringify(setAt(example, field, ''));
            const raw = JSON.stringify(setAt(example, field, fill(unit, BODY_CHARS - body.length)));
            await time(
              `${method.toUpperCase()} ${template} body.${field.join('.')} ${JSON.stringify(unit)}×`,
              method,
              pathFor(template),
              raw,
            );
          }
          for (const param of op.parameters ?? []) {
            const long = encodeURIComponent(
              fill(
                unit,
                QUERY_CHARS / (unit === '%' || unit === '%_' || unit === ':' || unit === '/' || unit === '@' ? 3 : 1),
              ),
            );
            if (param.in === 'query') {
              await time(
                `${method.toUpperCase()} ${template}?${param.name}= ${JSON.stringify(unit)}×`,
                method,
                `${pathFor(template)}?${param.name}=${long}`,
                media ? JSON.stringify(example) : undefined,
              );
            } else if (param.in === 'path') {
              await time(
                `${method.toUpperCase()} ${template} path ${JSON.stringify(unit)}×`,
                method,
                pathFor(template, long),
                media ? JSON.stringify(example) : undefined,
              );
            }
          }
        }
      }
    }
    report(`timing fuzz (${name})`, {
      requests: sent,
      slowestMs: Math.round(worst.ms),
      slowest: worst.what,
      overLimit: slow.length,
      serverErrors: failed.length,
    });
    expect(sent).toBeGreaterThan(200);
    expect(failed).toEqual([]);
    expect(slow).toEqual([]);
  }, 600_000);
});
