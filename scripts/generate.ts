/**
 * `npm run generate`: the files that follow from the module registry, written
 * from it — the gateway's nginx template, the split compose file, the
 * Prometheus config of the split topology — and the typed client's types.
 * The output is committed; test/generated.test.ts fails when a committed file
 * differs from what this script writes. `--check` only compares.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { adminEventRoutes } from '../src/http/admin-events.ts';
import { DOC_ROUTES } from '../src/http/docs.ts';
import { QUEUES_PATH } from '../src/http/queues-route.ts';
import { MODULE_DEFINITIONS, MODULE_NAMES, PRODUCERS, TOKEN_ISSUER, type ModuleName } from '../src/registry.ts';
import { CLIENT_SCHEMA, clientSchemaSource } from './generate-client.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const BANNER =
  '# Generated from the module registry (src/registry.ts) by `npm run generate`: edit the generator or the modules, not this file.';
const upper = (m: string) => m.toUpperCase();
const definition = (m: ModuleName) =>
  MODULE_DEFINITIONS[m] as {
    requires: readonly string[];
    schema: string;
    routes: { path: string }[];
    deploy?: { store?: 'postgres' | 'mongo'; env?: Record<string, string>; volumes?: string[] };
  };

/** The path prefixes a module's public routes live under: each route's path up to its first parameter, none inside another. */
export function routePrefixes(m: ModuleName): string[] {
  const paths = [
    ...definition(m).routes.map((r) => r.path),
    ...(PRODUCERS.includes(m) ? adminEventRoutes(m).map((r) => r.path) : []),
  ];
  const prefixes = [...new Set(paths.map((p) => p.split('/:')[0]!.replace(/\/+$/, '')))];
  const within = (p: string, q: string) => p !== q && (p.startsWith(`${q}/`) || p === q);
  return prefixes.filter((p) => !prefixes.some((q) => within(p, q))).sort();
}

const problem = (status: number, code: string, title: string, detail: string) =>
  `'{"type":"urn:toko:problem:${code}","title":"${title}","status":${status},"detail":"${detail}","code":"${code}"}'`;
const NOT_FOUND = problem(404, 'HTTP.NOT_FOUND', 'Not found', 'No such resource');

export function renderGatewayTemplate(): string {
  const upstreams = MODULE_NAMES.map((m) => `upstream toko_${m} { server \${${upper(m)}_UPSTREAM}; keepalive 16; }`);
  const any = `upstream toko_any { ${MODULE_NAMES.map((m) => `server \${${upper(m)}_UPSTREAM};`).join(' ')} keepalive 4; }`;
  const health = MODULE_NAMES.map((m) => `  location = /health/${m} { proxy_pass http://toko_${m}/health/ready; }`);
  const routes = MODULE_NAMES.flatMap((m) =>
    routePrefixes(m).map((p) => `  location ${p} { proxy_pass http://toko_${m}; }`),
  );
  const docs = DOC_ROUTES.map((d) => `  location = ${d.path} { proxy_pass http://toko_${TOKEN_ISSUER}; }`);
  return `# The toko gateway: routes each module's public paths to the service that
# hosts it. Used as is by docker-compose.split.yml (the nginx image fills the
# \${...} variables from its environment) and by \`npm run split\` and the split
# tests, which fill them with loopback addresses.
${BANNER}

${upstreams.join('\n')}
# Any service can tell the whole deployment's readiness (each knows the others' URLs); one that does not answer is skipped.
${any}

server {
  listen \${GATEWAY_LISTEN};
  server_tokens off;
  client_max_body_size 1m;
  # Bodies and responses stay in memory: no temporary files (a non-root
  # worker may not be able to write them, and they are slow anyway).
  client_body_buffer_size 1m;
  proxy_max_temp_file_size 0;
  # Slow clients (slow-loris) are cut off; the services have the same deadlines of their own.
  client_header_timeout 10s;
  client_body_timeout 10s;
  send_timeout 10s;
  keepalive_timeout 15s;

  # The gateway's own refusals are problem documents too, never nginx's HTML pages.
  error_page 413 = @too_large;
  error_page 502 503 504 = @unavailable;
  error_page 500 = @gateway_error;
  # A request nginx cannot read (a NUL in the path...) is answered from a fixed URI of its own.
  error_page 400 /__toko_bad_request;
  location = /__toko_bad_request { internal; default_type application/problem+json; return 400 ${problem(400, 'REQUEST.BAD', 'Bad request', 'The gateway could not read this request')}; }
  location @gateway_error { default_type application/problem+json; return 500 ${problem(500, 'SERVER.INTERNAL', 'Internal server error', 'The gateway could not handle the request')}; }
  location @too_large { default_type application/problem+json; return 413 ${problem(413, 'REQUEST.TOO_LARGE', 'Payload too large', 'The request body is too large')}; }
  # Methods the API never serves (TRACE, PROPFIND, ...) are refused here, as the services refuse them.
  error_page 405 = @not_allowed;
  if ($request_method !~ ^(GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS)$) { return 405; }
  location @not_allowed { default_type application/problem+json; add_header Allow "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS" always; return 405 ${problem(405, 'HTTP.METHOD_NOT_ALLOWED', 'Method not allowed', 'This method is not served here')}; }
  location @unavailable { default_type application/problem+json; add_header Retry-After 5 always; return 503 ${problem(503, 'SERVICE.UNAVAILABLE', 'Service unavailable', 'The service behind this route is not answering; try again shortly')}; }

  proxy_http_version 1.1;
  proxy_set_header Connection "";
  proxy_set_header Host $host;
  # The client's address as this gateway saw it; whatever X-Forwarded-For the client sent is dropped, never passed on.
  proxy_set_header X-Forwarded-For $remote_addr;
  proxy_set_header X-Forwarded-Proto $scheme;
  proxy_connect_timeout 2s;
  proxy_read_timeout 30s;

  # Service-to-service calls never pass through the gateway.
  location /internal/ { default_type application/problem+json; return 404 ${NOT_FOUND}; }

  location = /health { default_type application/json; return 200 '{"status":"ok","gateway":"nginx"}'; }
  # Every service ready, or 503 naming the modules that are not.
  location = /health/ready { proxy_pass http://toko_any/health/system; proxy_next_upstream error timeout http_502; proxy_next_upstream_tries ${MODULE_NAMES.length}; proxy_read_timeout 5s; }
${health.join('\n')}

  # Each module's public routes, from its definition.
${routes.join('\n')}

  # Every service serves the whole API's documents and Bull Board (every queue); the ${TOKEN_ISSUER} service answers here.
${docs.join('\n')}
  location /docs/assets/ { proxy_pass http://toko_${TOKEN_ISSUER}; }
  location ${QUEUES_PATH} { proxy_pass http://toko_${TOKEN_ISSUER}; }

  location / { default_type application/problem+json; return 404 ${NOT_FOUND}; }
}
`;
}

const SECRET_KEY = '${SERVICE_KEY:?set SERVICE_KEY to a shared secret of 16+ characters}';

export function renderSplitCompose(): string {
  const service = (m: ModuleName) => {
    const def = definition(m);
    const store = def.deploy?.store ?? 'postgres';
    const env: [string, string][] = [
      ['MODULES', m],
      ...MODULE_NAMES.filter((o) => o !== m).map((o): [string, string] => [
        `${upper(o)}_SERVICE_URL`,
        `http://${o}:3000`,
      ]),
      ['METRICS_PORT', '"9464"'],
      store === 'mongo'
        ? [`${upper(m)}_MONGODB_URL`, `mongodb://mongo:27017/${def.schema}`]
        : [`${upper(m)}_DATABASE_URL`, `postgres://toko:toko@${m}-db:5432/${def.schema}`],
      ['REDIS_URL', 'redis://redis:6379'],
      ['OTEL_EXPORTER_OTLP_ENDPOINT', '${OTEL_EXPORTER_OTLP_ENDPOINT:-}'],
      ['SERVICE_KEY', SECRET_KEY],
      ['TRUST_PROXY', '"true"'],
      ...Object.entries(def.deploy?.env ?? {}),
    ];
    const needs = [...new Set([...(m === TOKEN_ISSUER ? [] : [TOKEN_ISSUER]), ...def.requires])];
    const dependsOn = [store === 'mongo' ? 'mongo' : `${m}-db`, 'redis', ...needs].map(
      (d) => `      ${d}: { condition: service_healthy }`,
    );
    return [
      `  ${m}:`,
      '    <<: *service',
      '    environment:',
      ...env.map(([k, v]) => `      ${k}: ${v}`),
      ...(def.deploy?.volumes?.length ? ['    volumes:', ...def.deploy.volumes.map((v) => `      - ${v}`)] : []),
      '    depends_on:',
      ...dependsOn,
      '',
    ].join('\n');
  };
  const sqlModules = MODULE_NAMES.filter((m) => (definition(m).deploy?.store ?? 'postgres') === 'postgres');
  const databases = sqlModules.map((m) => {
    const db = definition(m).schema;
    return `  ${m}-db:
    image: postgres:16-alpine
    environment: { POSTGRES_USER: toko, POSTGRES_PASSWORD: toko, POSTGRES_DB: ${db} }
    volumes: [${m}-db-data:/var/lib/postgresql/data]
    healthcheck: { test: ["CMD-SHELL", "pg_isready -U toko -d ${db}"], <<: *healthy }
`;
  });
  const volumes = [
    ...MODULE_NAMES.flatMap((m) => (definition(m).deploy?.volumes ?? []).map((v) => v.split(':')[0]!)),
    ...sqlModules.map((m) => `${m}-db-data`),
    'mongo-data',
    'redis-data',
  ];
  return `# toko as ${MODULE_NAMES.length} services from one image (a different MODULES each) behind an
# nginx gateway: a PostgreSQL per SQL-backed service, MongoDB where a module
# keeps its data there, Redis for events. The gateway uses
# deploy/nginx/toko.conf.template, the same file \`npm run split\` and the split tests use.
#   SERVICE_KEY=$(openssl rand -hex 24) ADMIN_PASSWORD=… GRAFANA_ADMIN_PASSWORD=… docker compose -f docker-compose.split.yml up --build
# No secret has a default: compose refuses to start without them.
#   then http://localhost:8080/docs
${BANNER}
name: toko-split

x-healthy: &healthy
  interval: 5s
  timeout: 3s
  retries: 20

x-service: &service
  build: .
  restart: unless-stopped
  healthcheck:
    test: ["CMD", "node", "-e", "fetch('http://127.0.0.1:3000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
    <<: *healthy

services:
  gateway:
    image: nginx:1.27-alpine
    ports:
      - "8080:80"
    environment:
      GATEWAY_LISTEN: "80"
${MODULE_NAMES.map((m) => `      ${upper(m)}_UPSTREAM: ${m}:3000`).join('\n')}
    volumes:
      - ./deploy/nginx/toko.conf.template:/etc/nginx/templates/default.conf.template:ro
    depends_on:
${MODULE_NAMES.map((m) => `      ${m}: { condition: service_healthy }`).join('\n')}

${MODULE_NAMES.map(service).join('\n')}
${databases.join('\n')}
  mongo:
    image: mongo:7
    volumes: [mongo-data:/data/db]
    healthcheck: { test: ["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"], <<: *healthy }

  redis:
    image: redis:7-alpine
    # Events wait here on their way: kept on disk across restarts, never evicted.
    command: ["redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]
    volumes: [redis-data:/data]
    healthcheck: { test: ["CMD", "redis-cli", "ping"], <<: *healthy }

  # \`docker compose -f docker-compose.split.yml --profile monitoring up\` adds these three.
  prometheus:
    image: prom/prometheus:v3.1.0
    profiles: [monitoring]
    ports:
      - "9090:9090"
    volumes:
      - ./monitoring/prometheus/split.yml:/etc/prometheus/prometheus.yml:ro
      - ./monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro

  grafana:
    image: grafana/grafana:11.4.0
    profiles: [monitoring]
    ports:
      - "3001:3000"
    environment:
      GF_AUTH_ANONYMOUS_ENABLED: "true"
      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer
      GF_SECURITY_ADMIN_PASSWORD: \${GRAFANA_ADMIN_PASSWORD:?set GRAFANA_ADMIN_PASSWORD for Grafana's admin}
    volumes:
      - ./monitoring/grafana/provisioning:/etc/grafana/provisioning:ro
      - ./monitoring/grafana/dashboards:/var/lib/grafana/dashboards:ro
    depends_on:
      - prometheus

  # Receives traces over OTLP/HTTP when the toko services are started with
  # OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318; UI on :16686.
  jaeger:
    image: jaegertracing/all-in-one:1.64.0
    profiles: [monitoring]
    environment:
      COLLECTOR_OTLP_ENABLED: "true"
    ports:
      - "16686:16686"

volumes:
${volumes.map((v) => `  ${v}:`).join('\n')}
`;
}

export function renderPrometheusSplit(): string {
  return `# Prometheus for docker-compose.split.yml: each service is scraped directly
# on METRICS_PORT (9464), never published (and the gateway never routes /metrics). Every series carries a \`service\`
# label (toko-user, toko-product, ...) set by the process itself.
${BANNER}
global:
  scrape_interval: 10s
  evaluation_interval: 10s

# Dead events, an outbox falling behind, failed queue jobs, an open breaker, 5xx rate, slow p99, stuck orders.
rule_files:
  - /etc/prometheus/alerts.yml

scrape_configs:
  - job_name: toko
    metrics_path: /metrics
    static_configs:
      - targets: [${MODULE_NAMES.map((m) => `"${m}:9464"`).join(', ')}]
`;
}

/** Every generated file, by its path from the repository root, with what it should hold. */
export const GENERATED: { file: string; render: () => string | Promise<string> }[] = [
  { file: 'deploy/nginx/toko.conf.template', render: renderGatewayTemplate },
  { file: 'docker-compose.split.yml', render: renderSplitCompose },
  { file: 'monitoring/prometheus/split.yml', render: renderPrometheusSplit },
  { file: path.relative(ROOT, CLIENT_SCHEMA), render: clientSchemaSource },
];

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const g of GENERATED) {
    const text = await g.render();
    const file = path.join(ROOT, g.file);
    if (check) {
      if (readFileSync(file, 'utf8') !== text) {
        stale++;
        console.error(`${g.file} is out of date: run npm run generate`);
      }
    } else {
      writeFileSync(file, text);
      console.log(`wrote ${g.file}`);
    }
  }
  process.exit(stale > 0 ? 1 : 0);
}
