import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LADDER_ORIGIN,
  LADDER_PATH,
  ladderDeps,
  ladderKeys,
  ladderToken,
  rungApp,
  rungMiddleware,
  RUNGS,
  type LadderDeps,
  type Rung,
} from '../bench/ladder.ts';
import { createLogger } from '../src/logger.ts';
import { call } from './helpers/http.ts';

const keys = ladderKeys();
const token = ladderToken(keys);
const lines: Record<string, unknown>[] = [];
const destination = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
    done();
  },
});
const servers = new Map<Rung, { url: string; server: Server; deps: LadderDeps }>();

beforeAll(async () => {
  for (const rung of RUNGS) {
    const deps = ladderDeps(keys.publicKey, createLogger({ level: 'info', destination }));
    const server = rungApp(rung, deps).listen(0, '127.0.0.1');
    await once(server, 'listening');
    servers.set(rung, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, deps });
  }
});
afterAll(async () => {
  for (const { server } of servers.values()) await new Promise((r) => server.close(r));
});

const at = (rung: Rung) => servers.get(rung)!;
const get = (rung: Rung, opts: { path?: string; headers?: Record<string, string>; token?: string | null } = {}) =>
  call(at(rung).url, 'GET', opts.path ?? LADDER_PATH, {
    token: opts.token === null ? undefined : (opts.token ?? token),
    headers: opts.headers,
  });
const below = (rung: Rung) => RUNGS[RUNGS.indexOf(rung) - 1]!;

describe('the ladder (bench/ladder.ts)', () => {
  it('every rung answers the ladder route with the same user', async () => {
    for (const rung of RUNGS) {
      const r = await get(rung);
      expect(r.status, rung).toBe(200);
      expect(r.body.email, rung).toBe('ladder@example.com');
    }
  });

  it('follows createApp: the rung below the top one has the same middleware, in the same order', async () => {
    const top = rungApp('createApp (serialisation)', at('koa').deps) as unknown as { middleware: { name: string }[] };
    const names = top.middleware.map((m) => m.name);
    expect(names).toEqual(['clientAddresses', 'requestEnvelope', 'securityHeaders', 'cors', 'jsonBody', 'router']);
    expect(rungMiddleware('validation', at('koa').deps).map((m) => m.name)).toEqual(names);
    // Every lower rung keeps createApp's order: its middleware are an ordered subset of the top's.
    for (const rung of RUNGS.slice(0, -1) as Exclude<Rung, 'createApp (serialisation)'>[]) {
      const own = rungMiddleware(rung, at('koa').deps)
        .map((m) => names.indexOf(m.name))
        .filter((i) => i >= 0);
      expect(own, rung).toEqual([...own].sort((a, b) => a - b));
    }
  });

  it('the client-address rung mounts clientAddresses; the koa rung does not', () => {
    expect(rungMiddleware('client address', at('koa').deps).map((m) => m.name)).toContain('clientAddresses');
    expect(rungMiddleware('koa', at('koa').deps).map((m) => m.name)).not.toContain('clientAddresses');
  });

  it('the request-id rung echoes a request id; the rung below does not', async () => {
    expect((await get('envelope: request id and context')).headers.get('x-request-id')).toBeTruthy();
    expect((await get(below('envelope: request id and context'))).headers.get('x-request-id')).toBeNull();
  });

  it('the log-line rung writes one request line; the rung below writes none', async () => {
    lines.length = 0;
    await get(below('envelope: log line'));
    expect(lines.filter((l) => l.msg === 'request')).toHaveLength(0);
    const r = await get('envelope: log line');
    const mine = lines.filter((l) => l.msg === 'request');
    expect(mine).toHaveLength(1);
    expect(mine[0]!.requestId).toBe(r.headers.get('x-request-id'));
  });

  it('the metrics rung observes the request; the rung below does not', async () => {
    const count = async (rung: Rung) =>
      (await at(rung).deps.metrics.httpDuration.get()).values
        .filter((v) => v.metricName?.endsWith('_count'))
        .reduce((a, v) => a + v.value, 0);
    const before = await count('envelope: metrics');
    await get('envelope: metrics');
    expect(await count('envelope: metrics')).toBe(before + 1);
    await get(below('envelope: metrics'));
    expect(await count(below('envelope: metrics'))).toBe(0);
  });

  it("the security-headers rung sends helmet's headers; the rung below does not", async () => {
    expect((await get('security headers')).headers.get('x-content-type-options')).toBe('nosniff');
    expect((await get(below('security headers'))).headers.get('x-content-type-options')).toBeNull();
  });

  it('the CORS rung echoes an allowed origin; the rung below does not', async () => {
    const origin = { origin: LADDER_ORIGIN };
    expect((await get('CORS', { headers: origin })).headers.get('access-control-allow-origin')).toBe(LADDER_ORIGIN);
    expect((await get(below('CORS'), { headers: origin })).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('the body-parser rung refuses malformed JSON with 400; the rung below ignores the body', async () => {
    const bad = (rung: Rung) =>
      call(at(rung).url, 'POST', LADDER_PATH, {
        token,
        raw: '{"not json',
        headers: { 'content-type': 'application/json' },
      });
    expect((await bad('body parser')).status).toBe(400);
    expect((await bad(below('body parser'))).status).toBe(200);
  });

  it('the routing rung answers 404 off its route; the rung below answers any path', async () => {
    expect((await get('routing', { path: '/nowhere' })).status).toBe(404);
    expect((await get(below('routing'), { path: '/nowhere' })).status).toBe(200);
  });

  it('the auth rung refuses a request without a token (401); the rung below lets it in', async () => {
    expect((await get('auth', { token: null })).status).toBe(401);
    expect((await get(below('auth'), { token: null })).status).toBe(200);
  });

  it('the validation rung refuses an undeclared query parameter (422); the rung below does not', async () => {
    expect((await get('validation', { path: `${LADDER_PATH}?surprise=1` })).status).toBe(422);
    expect((await get(below('validation'), { path: `${LADDER_PATH}?surprise=1` })).status).toBe(200);
  });

  it('the top rung is createApp: it serves /metrics and the OpenAPI document; the rung below does not', async () => {
    expect((await get('createApp (serialisation)', { path: '/openapi.json' })).status).toBe(200);
    expect((await get(below('createApp (serialisation)'), { path: '/openapi.json' })).status).toBe(404);
  });
});
