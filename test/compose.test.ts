import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, MODULE_NAMES, type Config, type ModuleName } from '../src/config.ts';
import { MODULE_DEFINITIONS } from '../src/registry.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Service {
  build?: unknown;
  image?: string;
  command?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
}

const load = (file: string) =>
  parse(readFileSync(path.join(ROOT, file), 'utf8'), { merge: true }) as { services: Record<string, Service> };

/** The environment as compose would give it with nothing set: `${X:-default}` is the default, `${X:?msg}` a stand-in secret. */
const substitute = (env: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(env).map(([k, v]) => [
      k,
      String(v)
        .replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')
        .replace(/\$\{[A-Z_]+:\?[^}]*\}/g, 'a-stand-in-secret-of-enough-length'),
    ]),
  );

function checkTopology(file: string) {
  const compose = load(file);
  const names = Object.keys(compose.services);
  const configs = new Map<string, Config>();
  for (const [name, service] of Object.entries(compose.services).filter(([, s]) => s.build !== undefined)) {
    configs.set(name, loadConfig(substitute(service.environment ?? {})));
  }
  const hostOf = (url: string) => new URL(url).hostname;
  const hostedBy = (m: ModuleName) => [...configs].filter(([, c]) => c.modules.includes(m)).map(([n]) => n);

  for (const m of MODULE_NAMES) expect(hostedBy(m), `${file}: ${m} hosted once`).toHaveLength(1);

  for (const [name, c] of configs) {
    for (const m of c.modules) {
      // Its data lives in a database that compose runs (never the embedded one).
      const url = c.mongoUrls[m] ?? c.databaseUrls[m];
      expect(url, `${file}: ${name} needs a database for ${m}`).toBeDefined();
      expect(names, `${file}: ${name}'s ${m} database host`).toContain(hostOf(url!));
      // Every module it calls (and the user service, for tokens) is hosted here or reachable at a service that hosts it.
      const needs = new Set<ModuleName>([
        ...(MODULE_DEFINITIONS[m].requires as ModuleName[]),
        ...(m === 'user' ? [] : (['user'] as ModuleName[])),
      ]);
      for (const r of needs) {
        if (c.modules.includes(r)) continue;
        const target = c.serviceUrls[r];
        expect(target, `${file}: ${name} needs ${r.toUpperCase()}_SERVICE_URL`).toBeDefined();
        expect(
          hostedBy(r),
          `${file}: ${name}'s ${r.toUpperCase()}_SERVICE_URL points at the service hosting ${r}`,
        ).toEqual([hostOf(target!)]);
      }
    }
    if (Object.keys(c.serviceUrls).length > 0) {
      expect(c.redisUrl, `${file}: ${name} calls other services, so it needs REDIS_URL`).toBeDefined();
      expect(names).toContain(hostOf(c.redisUrl!));
      expect(c.serviceKey, `${file}: ${name} needs SERVICE_KEY`).toBeDefined();
    }
  }
  // Secrets have no default a deployment could keep by accident: compose refuses to start without them.
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  expect(text, `${file}: no stock password`).not.toMatch(/change-me/i);
  for (const [, name] of text.matchAll(/\$\{([A-Z_]*(?:PASSWORD|KEY|SECRET)[A-Z_]*)(?::-|-)/g))
    expect.fail(`${file}: ${name} has a default`);
  for (const name of ['ADMIN_PASSWORD', 'GRAFANA_ADMIN_PASSWORD'])
    expect(text, `${file}: ${name} is required`).toMatch(new RegExp(`\\$\\{${name}:\\?`));
  // Redis holds the events on their way: it must keep them across a restart and never evict one.
  const redis = compose.services.redis!;
  const args = Array.isArray(redis.command) ? redis.command.join(' ') : (redis.command ?? '');
  expect(args, `${file}: redis keeps an append-only file`).toMatch(/--appendonly yes\b/);
  expect(args, `${file}: redis never evicts`).toMatch(/--maxmemory-policy noeviction\b/);
  expect(
    redis.volumes?.some((v) => v.endsWith(':/data')),
    `${file}: redis data on a volume`,
  ).toBe(true);
  return { compose, configs, hostedBy };
}

describe('docker-compose.yml', () => {
  it('runs every module in one process on PostgreSQL, MongoDB and Redis, all defined in the file', () => {
    const { configs } = checkTopology('docker-compose.yml');
    expect([...configs.keys()]).toEqual(['app']);
    expect(configs.get('app')).toMatchObject({
      mongoUrls: { product: expect.stringMatching(/^mongodb:/) },
      redisUrl: expect.stringMatching(/^redis:/),
    });
  });
});

describe('docker-compose.split.yml', () => {
  it('hosts each module once, with every service URL pointing at the service that hosts that module', () => {
    const { configs } = checkTopology('docker-compose.split.yml');
    expect(configs.size).toBe(4);
    // The services share one key: each one's internal calls must be accepted by the others.
    expect(new Set([...configs.values()].map((c) => c.serviceKey)).size).toBe(1);
    // Each knows where every other module runs, so whichever one the gateway asks can tell the whole deployment's readiness.
    for (const [name, c] of configs) {
      expect(Object.keys(c.serviceUrls).sort(), `${name}'s service URLs`).toEqual(
        MODULE_NAMES.filter((m) => !c.modules.includes(m)).sort(),
      );
    }
  });

  it('routes the gateway to the service hosting each module, with the template the split tests use', () => {
    const { compose, hostedBy } = checkTopology('docker-compose.split.yml');
    const gateway = compose.services.gateway!;
    expect(gateway.volumes?.[0]).toMatch(/^\.\/deploy\/nginx\/toko\.conf\.template:/);
    expect(existsSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'))).toBe(true);
    const template = readFileSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'), 'utf8');
    // The gateway hands on the address it saw, never one a client wrote (the services trust exactly this one hop).
    expect(template).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    expect(template).not.toMatch(/proxy_add_x_forwarded_for/);
    for (const service of Object.values(compose.services).filter((s) => s.environment?.TRUST_PROXY === 'true')) {
      expect(service.environment?.TRUSTED_PROXY_HOPS ?? '1').toBe('1');
    }
    for (const variable of new Set([...template.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!))) {
      expect(gateway.environment, `gateway sets ${variable}`).toHaveProperty(variable);
    }
    for (const m of MODULE_NAMES) {
      const upstream = gateway.environment![`${m.toUpperCase()}_UPSTREAM`]!;
      expect(hostedBy(m), `${m} upstream`).toEqual([upstream.split(':')[0]]);
    }
  });
});
