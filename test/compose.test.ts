import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { BlockList } from 'node:net';
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
  ports?: string[];
  profiles?: string[];
  networks?: Record<string, { ipv4_address?: string } | null>;
  deploy?: { replicas?: string | number };
  container_name?: string;
}

const load = (file: string) =>
  parse(readFileSync(path.join(ROOT, file), 'utf8'), { merge: true }) as { services: Record<string, Service> };

/**
 * Compose v2's interpolation of one value (docs.docker.com/reference/compose-file/interpolation):
 * `$$` is a `$`; `$X`, `${X}`; `${X:-d}` / `${X-d}` a default when unset or empty / unset; `${X:?e}` /
 * `${X?e}` required; `${X:+r}` / `${X+r}` a replacement when set; nested in the words. `missing`
 * collects the variables whose absence stops Compose.
 */
function interpolate(text: string, env: Record<string, string>, missing = new Set<string>()): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (text[i] !== '$') {
      out += text[i++];
      continue;
    }
    if (text[i + 1] === '$') {
      out += '$';
      i += 2;
      continue;
    }
    const bare = /^\$([_a-zA-Z][_a-zA-Z0-9]*)/.exec(text.slice(i));
    if (bare) {
      out += env[bare[1]!] ?? '';
      i += bare[0].length;
      continue;
    }
    const braced = /^\$\{([_a-zA-Z][_a-zA-Z0-9]*)(:-|-|:\?|\?|:\+|\+)?/.exec(text.slice(i));
    if (!braced) throw new Error(`invalid interpolation in ${text}`);
    let depth = 1;
    let j = i + braced[0].length;
    const wordStart = j;
    for (; j < text.length && depth > 0; j++) {
      if (text[j] === '$' && text[j + 1] === '{') depth++;
      else if (text[j] === '}') depth--;
    }
    if (depth > 0) throw new Error(`unclosed interpolation in ${text}`);
    const [name, op] = [braced[1]!, braced[2]];
    const word = () => interpolate(text.slice(wordStart, j - 1), env, missing);
    const value = env[name];
    const set = value !== undefined;
    const full = set && value !== '';
    if (op === undefined) out += value ?? '';
    else if (op === ':-') out += full ? value : word();
    else if (op === '-') out += set ? value : word();
    else if (op === ':?' || op === '?') {
      if (op === ':?' ? full : set) out += value;
      else missing.add(name);
    } else if (op === ':+') out += full ? word() : '';
    else out += set ? word() : '';
    i = j;
  }
  return out;
}

/** Every string a parsed YAML document holds. */
const strings = (node: unknown): string[] =>
  typeof node === 'string'
    ? [node]
    : Array.isArray(node)
      ? node.flatMap(strings)
      : node && typeof node === 'object'
        ? Object.values(node).flatMap(strings)
        : [];

/** The variables without which Compose refuses the project made of `files`, given `env`. */
function missingVariables(files: string[], env: Record<string, string>): string[] {
  const missing = new Set<string>();
  for (const file of files)
    for (const value of strings(parse(readFileSync(path.join(ROOT, file), 'utf8')))) interpolate(value, env, missing);
  return [...missing].sort();
}

/** The environment as Compose would give it with nothing set but stand-ins for the secrets it requires. */
const substitute = (env: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(env).map(([k, v]) => {
      const required = new Set<string>();
      interpolate(String(v), {}, required);
      const stand = Object.fromEntries([...required].map((r) => [r, 'a-stand-in-secret-of-enough-length']));
      return [k, interpolate(String(v), stand)];
    }),
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
  expect(text, `${file}: ADMIN_PASSWORD is required`).toMatch(/\$\{ADMIN_PASSWORD:\?/);
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
    expect(configs.size).toBe(MODULE_NAMES.length);
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
    const { compose, configs, hostedBy } = checkTopology('docker-compose.split.yml');
    const gateway = compose.services.gateway!;
    expect(gateway.volumes?.[0]).toMatch(/^\.\/deploy\/nginx\/toko\.conf\.template:/);
    expect(existsSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'))).toBe(true);
    const template = readFileSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'), 'utf8');
    // The gateway hands on the address it saw, never one a client wrote ...
    expect(template).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    expect(template).not.toMatch(/proxy_add_x_forwarded_for/);
    // ... from a fixed address in the network's fixed range, the one proxy every service believes.
    const address = interpolate(gateway.networks!.default!.ipv4_address!, {});
    const subnet = interpolate(
      (
        parse(readFileSync(path.join(ROOT, 'docker-compose.split.yml'), 'utf8')) as {
          networks: { default: { ipam: { config: { subnet: string }[] } } };
        }
      ).networks.default.ipam.config[0]!.subnet,
      {},
    );
    const [base, bits] = subnet.split('/');
    const range = new BlockList();
    range.addSubnet(base!, Number(bits));
    expect(range.check(address), `${address} in ${subnet}`).toBe(true);
    for (const [name, c] of configs) expect(c.trustedProxies, `${name} believes the gateway only`).toEqual([address]);
    for (const variable of new Set([...template.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!))) {
      expect(gateway.environment, `gateway sets ${variable}`).toHaveProperty(variable);
    }
    for (const m of MODULE_NAMES) {
      const upstream = gateway.environment![`${m.toUpperCase()}_UPSTREAM`]!;
      expect(hostedBy(m), `${m} upstream`).toEqual([upstream.split(':')[0]]);
    }
  });
});

describe('docker-compose.split.yml with several replicas of a service', () => {
  const compose = load('docker-compose.split.yml');
  const services = MODULE_NAMES.map((m) => [m, compose.services[m]!] as const);

  it('can run each service several times: no fixed host port or container name, <SERVICE>_REPLICAS processes, each told how many', () => {
    for (const [m, s] of services) {
      expect(s.ports, `${m} publishes no port of its own`).toBeUndefined();
      expect(s.container_name, `${m} has no fixed container name`).toBeUndefined();
      const variable = `${m.toUpperCase()}_REPLICAS`;
      expect(interpolate(String(s.deploy?.replicas), {}), `${m} runs once by default`).toBe('1');
      expect(interpolate(String(s.deploy?.replicas), { [variable]: '3' })).toBe('3');
      expect(interpolate(s.environment!.REPLICAS!, { [variable]: '3' }), `${m}'s REPLICAS follows ${variable}`).toBe(
        '3',
      );
      // With REDIS_URL, as the file gives every service: several replicas are a configuration the services accept.
      const env = substitute({
        ...s.environment!,
        REPLICAS: interpolate(s.environment!.REPLICAS!, { [variable]: '3' }),
      });
      expect(loadConfig(env).replicas).toBe(3);
    }
  });

  it("has the gateway follow every replica through Docker's DNS (upstream servers with resolve, in a shared zone)", () => {
    const gateway = compose.services.gateway!;
    const [, version] = /^nginx:(\d+\.\d+\.\d+)-alpine$/.exec(gateway.image!) ?? [];
    const [major, minor, patch] = version!.split('.').map(Number);
    // `resolve` on an upstream server came to open-source nginx in 1.27.3.
    expect(major! * 1e6 + minor! * 1e3 + patch!, `${gateway.image} has resolve`).toBeGreaterThanOrEqual(1_027_003);
    for (const m of MODULE_NAMES) expect(gateway.environment![`${m.toUpperCase()}_UPSTREAM`]).toBe(`${m}:3000 resolve`);
    const mount = gateway.volumes!.find((v) => v.includes('/etc/nginx/conf.d/'))!;
    const dns = readFileSync(path.join(ROOT, mount.split(':')[0]!), 'utf8');
    expect(dns).toMatch(/^resolver 127\.0\.0\.11 valid=\d+s ipv6=off;$/m);
    const template = readFileSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'), 'utf8');
    for (const [, body] of template.matchAll(/^upstream \w+ \{(.*)\}$/gm)) expect(body).toMatch(/ zone \w+ \w+;/);
  });

  const nginx = spawnSync('nginx', ['-v']).status === 0;
  it.skipIf(!nginx)('gives nginx a configuration it accepts (the template filled as the nginx image fills it)', () => {
    const gateway = compose.services.gateway!;
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-compose-nginx-'));
    try {
      const env = gateway.environment!;
      // Docker's names resolve only in Compose's network: loopback stands in for them. This machine's nginx
      // may predate `resolve` (1.27.3): the rest of each server line is checked all the same.
      const local = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr;
      const [, v = '0.0.0'] = /nginx\/(\d+\.\d+\.\d+)/.exec(local) ?? [];
      const [a, b, c] = v.split('.').map(Number);
      const hasResolve = a! * 1e6 + b! * 1e3 + c! >= 1_027_003;
      const text = readFileSync(path.join(ROOT, 'deploy/nginx/toko.conf.template'), 'utf8').replace(
        /\$\{([A-Z_]+)\}/g,
        (_, name: string) => {
          const value = env[name]!;
          if (name === 'GATEWAY_LISTEN') return `127.0.0.1:${value === '80' ? 18080 : value}`;
          return hasResolve
            ? value.replace(/^[a-z]+:/, 'localhost:')
            : value.replace(/^[a-z]+:(\d+) resolve$/, '127.0.0.1:$1');
        },
      );
      const dns = readFileSync(path.join(ROOT, 'deploy/nginx/docker-dns.conf'), 'utf8');
      writeFileSync(path.join(dir, 'default.conf'), text);
      writeFileSync(path.join(dir, 'dns.conf'), dns);
      writeFileSync(
        path.join(dir, 'nginx.conf'),
        `pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log;\nevents {}\nhttp { access_log off; client_body_temp_path ${dir}; proxy_temp_path ${dir}; include ${dir}/dns.conf; include ${dir}/default.conf; }\n`,
      );
      const check = spawnSync('nginx', ['-t', '-q', '-p', dir, '-c', path.join(dir, 'nginx.conf')], {
        encoding: 'utf8',
      });
      expect(check.stderr).toBe('');
      expect(check.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const MONITORING = [
  { file: 'docker-compose.monitoring.yml', base: 'docker-compose.yml' },
  { file: 'docker-compose.split.monitoring.yml', base: 'docker-compose.split.yml' },
];

describe('the monitoring files', () => {
  for (const { file, base } of MONITORING) {
    it(`${file}: Prometheus, Grafana and Jaeger on this machine's loopback unless MONITORING_BIND says otherwise; Grafana without anonymous viewers`, () => {
      const { services } = load(file);
      expect(Object.keys(services).sort()).toEqual(['grafana', 'jaeger', 'prometheus']);
      for (const [name, s] of Object.entries(services)) {
        expect(s.profiles, `${name} needs no profile: its file is the choice`).toBeUndefined();
        expect(s.ports?.length, `${name} publishes its UI`).toBeGreaterThan(0);
        for (const port of s.ports!) {
          expect(interpolate(port, {}), `${name} ${port}`).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
          expect(interpolate(port, { MONITORING_BIND: '192.0.2.10' }), `${name} ${port}`).toMatch(/^192\.0\.2\.10:/);
        }
      }
      const grafana = services.grafana!.environment!;
      expect(grafana.GF_AUTH_ANONYMOUS_ENABLED).toBe('false');
      expect(grafana).not.toHaveProperty('GF_AUTH_ANONYMOUS_ORG_ROLE');
      expect(grafana.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD:\?/);
      // The base file has none of them: they come with this file only.
      const inBase = Object.keys(load(base).services);
      for (const name of Object.keys(services)) expect(inBase, `${base} has no ${name}`).not.toContain(name);
    });
  }
});

/** The files Compose v2 reads without -f: the first of these that exists, and its override file if there is one. */
const DEFAULT_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yaml', 'docker-compose.yml'];

interface Invocation {
  where: string;
  command: string;
  env: Record<string, string>;
  files: string[];
  profiles: string[];
  subcommand: string;
}

/** `VAR=… VAR=$(…) docker compose [-f FILE]... [--profile P]... <subcommand>`. */
const COMMAND =
  /((?:\b[A-Z_][A-Z0-9_]*=(?:\$\([^)]*\)|[^\s`|]+)\s+)*)docker compose((?:\s+(?:-f|--file|--profile)\s+[^\s`|]+)*)\s+([a-z]+)/g;

/** Every `docker compose` command README, docs/ and the compose files' own comments show. */
function documentedInvocations(): Invocation[] {
  const sources = [
    'README.md',
    ...readdirSync(path.join(ROOT, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    ...readdirSync(ROOT).filter((f) => /^docker-compose.*\.yml$/.test(f)),
  ];
  return sources.flatMap((where) =>
    readFileSync(path.join(ROOT, where), 'utf8')
      .split('\n')
      .flatMap((line) =>
        [...line.matchAll(COMMAND)].map((m) => {
          const env = Object.fromEntries(
            [...m[1]!.matchAll(/([A-Z_][A-Z0-9_]*)=(\$\([^)]*\)|\S+)/g)].map((a) => [a[1]!, a[2]!]),
          );
          const options = [...m[2]!.matchAll(/(-f|--file|--profile)\s+(\S+)/g)];
          const files = options.filter((o) => o[1] !== '--profile').map((o) => o[2]!);
          const defaults = [DEFAULT_FILES.find((f) => existsSync(path.join(ROOT, f)))!];
          const override = defaults[0]!.replace(/\.ya?ml$/, '.override$&');
          if (existsSync(path.join(ROOT, override))) defaults.push(override);
          return {
            where,
            command: m[0].trim(),
            env,
            files: files.length > 0 ? files : defaults,
            profiles: options.filter((o) => o[1] === '--profile').map((o) => o[2]!),
            subcommand: m[3]!,
          };
        }),
      ),
  );
}

describe('the documented compose commands', () => {
  const invocations = documentedInvocations();

  it('require of each file exactly its own secrets: Grafana’s only with the monitoring file', () => {
    expect(missingVariables(['docker-compose.yml'], {})).toEqual(['ADMIN_PASSWORD']);
    expect(missingVariables(['docker-compose.split.yml'], {})).toEqual(['ADMIN_PASSWORD', 'SERVICE_KEY']);
    expect(missingVariables(['docker-compose.yml', 'docker-compose.monitoring.yml'], {})).toEqual([
      'ADMIN_PASSWORD',
      'GRAFANA_ADMIN_PASSWORD',
    ]);
    expect(missingVariables(['docker-compose.split.yml', 'docker-compose.split.monitoring.yml'], {})).toEqual([
      'ADMIN_PASSWORD',
      'GRAFANA_ADMIN_PASSWORD',
      'SERVICE_KEY',
    ]);
    // An empty value counts as missing (`:?`), as Compose has it.
    expect(missingVariables(['docker-compose.yml'], { ADMIN_PASSWORD: '' })).toEqual(['ADMIN_PASSWORD']);
  });

  it('start each compose file, alone or with its monitoring file', () => {
    const started = invocations.filter((i) => i.subcommand === 'up').map((i) => i.files.join(' '));
    for (const { file, base } of MONITORING) {
      expect(started, `a documented command starts ${base}`).toContain(base);
      expect(started, `a documented command starts ${base} with ${file}`).toContain(`${base} ${file}`);
    }
  });

  it('set every variable the files they use require, and use only profiles those files have', () => {
    expect(invocations.length).toBeGreaterThan(4);
    for (const i of invocations) {
      const where = `${i.where}: ${i.command}`;
      for (const f of i.files) expect(existsSync(path.join(ROOT, f)), `${where}: ${f} exists`).toBe(true);
      expect(missingVariables(i.files, i.env), `${where} leaves Compose without`).toEqual([]);
      const profiles = i.files.flatMap((f) => Object.values(load(f).services).flatMap((s) => s.profiles ?? []));
      for (const p of i.profiles) expect(profiles, `${where}: profile ${p}`).toContain(p);
    }
  });

  it('are Compose v2 commands, and the docs say so', () => {
    for (const where of ['README.md', 'docs/topologies.md', 'docs/observability.md'])
      expect(readFileSync(path.join(ROOT, where), 'utf8'), where).not.toMatch(/\bdocker-compose\s+(?:up|down|-f)\b/);
    expect(readFileSync(path.join(ROOT, 'docs/topologies.md'), 'utf8')).toMatch(/Compose v2/);
  });
});
