import { execFile } from 'node:child_process';
import { randomInt, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.ts';

/**
 * Runs requests.http the way the VS Code REST Client does: file variables
 * (`@name = value`, resolved when used), named requests (`# @name x`) and
 * values taken from their responses (`{{x.response.body.$.path}}`) and the
 * system variables it uses (`{{$guid}}`, `{{$randomInt min max}}`).
 */
interface HttpRequest {
  title: string;
  name?: string;
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

function parseHttpFile(text: string): { variables: Map<string, string>; requests: HttpRequest[] } {
  const variables = new Map<string, string>();
  const requests: HttpRequest[] = [];
  for (const block of text.split(/^###/m)) {
    const lines = block.split('\n');
    const title = lines.shift()!.trim();
    let name: string | undefined;
    let request: HttpRequest | undefined;
    let inBody = false;
    const body: string[] = [];
    for (const line of lines) {
      const named = /^#\s*@name\s+(\w+)/.exec(line);
      if (named) name = named[1];
      const variable = /^@(\w+)\s*=\s*(.*)$/.exec(line);
      if (variable) {
        variables.set(variable[1]!, variable[2]!.trim());
        continue;
      }
      if (/^\s*(#|\/\/)/.test(line)) continue;
      if (!request) {
        const start = /^(GET|POST|PUT|PATCH|DELETE)\s+(\S+)/.exec(line);
        if (start) request = { title, name, method: start[1]!, url: start[2]!, headers: {} };
        continue;
      }
      if (!inBody) {
        if (line.trim() === '') inBody = true;
        else {
          const [k, ...v] = line.split(':');
          request.headers[k!.trim().toLowerCase()] = v.join(':').trim();
        }
        continue;
      }
      body.push(line);
    }
    if (request) {
      const b = body.join('\n').trim();
      if (b) request.body = b;
      requests.push(request);
    }
  }
  return { variables, requests };
}

function jsonPath(value: unknown, p: string): unknown {
  let v = value;
  for (const [, key, index] of p.replace(/^\$\.?/, '').matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    v = (v as Record<string, unknown> | undefined)?.[key ?? Number(index)];
  }
  return v;
}

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ ADMIN_EMAIL: 'admin@toko.local', ADMIN_PASSWORD: 'change-me-please', SEED_DEMO: 'true' });
}, 60_000);
afterAll(() => app?.close());

/** Runs requests.http once; the responses by request name and each request's method and path. */
async function walk(requests: HttpRequest[], variables: Map<string, string>) {
  const responses = new Map<string, unknown>();
  const resolve = (text: string, depth = 0): string =>
    text.replace(/\{\{\s*([^}]+?)\s*\}\}/g, (_, ref: string) => {
      if (ref === '$guid') return randomUUID();
      const int = /^\$randomInt\s+(\d+)\s+(\d+)$/.exec(ref);
      if (int) return String(randomInt(Number(int[1]), Number(int[2])));
      const fromResponse = /^(\w+)\.response\.body\.(\$.*)$/.exec(ref);
      if (fromResponse) {
        const v = jsonPath(responses.get(fromResponse[1]!), fromResponse[2]!);
        if (v === undefined) throw new Error(`${ref} has no value (was the request run and did it answer?)`);
        return String(v);
      }
      const v = variables.get(ref);
      if (v === undefined || depth > 5) throw new Error(`unknown variable ${ref}`);
      return resolve(v, depth + 1);
    });

  const seen: string[] = [];
  for (const r of requests) {
    const res = await fetch(resolve(r.url), {
      method: r.method,
      headers: Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, resolve(v)])),
      body: r.body === undefined ? undefined : resolve(r.body),
    });
    const text = await res.text();
    expect({ request: r.title, status: res.status, ok: res.ok }, text.slice(0, 300)).toMatchObject({ ok: true });
    if (r.name) responses.set(r.name, JSON.parse(text));
    seen.push(`${r.method} ${new URL(resolve(r.url)).pathname}`);
  }
  return { responses, seen };
}

describe('requests.http', () => {
  it('walks the whole flow, every request answered with success, and again on the same toko', async () => {
    const { variables, requests } = parseHttpFile(
      readFileSync(path.resolve(import.meta.dirname, '..', 'requests.http'), 'utf8'),
    );
    variables.set('baseUrl', app.url);
    const first = await walk(requests, variables);
    console.info(`requests.http: ${requests.length} requests, all answered 2xx`);
    // The walk touches every module and ends with the order cancelled.
    for (const prefix of ['/api/v1/users', '/api/v1/products', '/api/v1/orders', '/api/v1/notifications']) {
      expect(
        first.seen.some((s) => s.includes(prefix)),
        prefix,
      ).toBe(true);
    }
    expect((first.responses.get('order') as { status: string }).status).toBe('confirmed');
    // A second run (no 409 for a taken e-mail, no 422 for a reused Idempotency-Key) places a new order for a new customer.
    const second = await walk(requests, variables);
    const ids = (name: string) => [first, second].map((w) => (w.responses.get(name) as { id: string }).id);
    for (const name of ['register', 'product', 'order']) expect(new Set(ids(name)).size, name).toBe(2);
    // Each run's product has a name of its own: running the file again adds no look-alike to the catalogue.
    const names = [first, second].map((w) => (w.responses.get('product') as { name: string }).name);
    expect(new Set(names).size).toBe(2);
  });
});

describe('the walk-through in docs/api.md', () => {
  const script = () => {
    const api = readFileSync(path.resolve(import.meta.dirname, '..', 'docs', 'api.md'), 'utf8');
    const heading = api.indexOf('\n## A walk through the API\n');
    expect(heading, 'docs/api.md has its walk-through').toBeGreaterThan(-1);
    const text = /```sh\n([\s\S]*?)```/.exec(api.slice(heading))![1]!;
    expect(text).toContain('curl');
    return text;
  };
  const walk = (url: string) =>
    promisify(execFile)('bash', ['-c', script().replaceAll('localhost:3000', new URL(url).host)], { timeout: 30_000 });

  it('runs in a shell against toko as written, every step answered with success, twice', async () => {
    for (let i = 0; i < 2; i++) {
      const { stdout } = await walk(app.url);
      expect(stdout).toMatch(/walk-through done: order [0-9a-f-]{36}/);
    }
  });

  it('stops at the first step that fails: with no product to find, no order is attempted and it exits non-zero', async () => {
    const empty = await startTestApp({ SEED_DEMO: 'false' });
    try {
      const failed = await walk(empty.url).then(
        () => undefined,
        (err: { code?: number; stdout?: string; stderr?: string }) => err,
      );
      expect(failed, 'the walk-through went on past a failed step').toBeDefined();
      expect(failed!.code).not.toBe(0);
      expect(failed!.stdout).not.toMatch(/walk-through done/);
      // It stopped where the product was looked up (no product: node could not read an id), before any order.
      expect(failed!.stderr).toMatch(/TypeError|Cannot read/);
    } finally {
      await empty.close();
    }
  });
});
