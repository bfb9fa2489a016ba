/**
 * docker-compose.split.yml: the gateway, a service per module from one image
 * (a different MODULES each), a PostgreSQL per SQL-backed module, MongoDB,
 * Redis. And the monitoring files, one per topology, added with a second
 * `-f`: Compose interpolates every file it is given before it looks at
 * profiles, so Grafana's password is asked for only when its file is given.
 */
import { MODULE_NAMES, TOKEN_ISSUER, type ModuleName } from '../../src/registry.ts';
import { BANNER, definition, storeOf, upper } from './registry.ts';

const SECRET_KEY = '${SERVICE_KEY:?set SERVICE_KEY to a shared secret of 16+ characters}';

/** The split services' network: a fixed range, so the gateway has an address the services can trust. */
const SUBNET = '${SPLIT_SUBNET:-172.30.80.0/24}';
const GATEWAY_ADDRESS = '${GATEWAY_ADDRESS:-172.30.80.10}';

const header = () => `# toko as ${MODULE_NAMES.length} services from one image (a different MODULES each) behind an
# nginx gateway: a PostgreSQL per SQL-backed service, MongoDB where a module
# keeps its data there, Redis for events. The gateway uses
# deploy/nginx/toko.conf.template, the same file \`npm run split\` and the split tests use.
# With Compose v2:
#   SERVICE_KEY=$(openssl rand -hex 24) ADMIN_PASSWORD=… docker compose -f docker-compose.split.yml up --build
# No secret has a default: Compose refuses to start without them.
#   then http://localhost:8080/docs
# The services believe X-Forwarded-For from the gateway's address only (TRUSTED_PROXIES):
# it has a fixed one, GATEWAY_ADDRESS in SPLIT_SUBNET; set both if that range is taken here.
# Several replicas of a service: <SERVICE>_REPLICAS=2 (USER_REPLICAS, PRODUCT_REPLICAS...) runs two
# and tells each (REPLICAS); the gateway follows every replica through Docker's DNS.
${BANNER}
name: toko-split`;

const ANCHORS = `x-healthy: &healthy
  interval: 5s
  timeout: 3s
  retries: 20

x-service: &service
  build: .
  restart: unless-stopped
  healthcheck:
    test: ["CMD", "node", "-e", "fetch('http://127.0.0.1:3000/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
    <<: *healthy`;

/** Where the gateway finds Docker's DNS, which names every replica of a service (deploy/nginx/docker-dns.conf). */
export const DOCKER_DNS_CONF = 'deploy/nginx/docker-dns.conf';

/** The gateway's resolver in Compose: Docker's embedded DNS, asked again every few seconds. */
export const renderDockerDns =
  () => `# The gateway's resolver in docker-compose.split.yml: Docker's embedded DNS, which answers a
# service's name with the address of each of its replicas. The template's upstream servers
# are given there as \`<service>:3000 resolve\`, so nginx follows the replicas that
# \`docker compose up --scale\` adds or removes, and a replica restarted on a new address.
${BANNER}
resolver 127.0.0.11 valid=5s ipv6=off;
`;

/**
 * nginx with the generated template, an upstream per module: each the
 * service's DNS name with \`resolve\` (nginx 1.27.3 or later), so that it lists
 * every replica Compose runs and follows them as they change.
 */
const gateway = () => `  gateway:
    image: nginx:1.27.5-alpine
    ports:
      - "8080:80"
    networks:
      default:
        ipv4_address: ${GATEWAY_ADDRESS}
    environment:
      GATEWAY_LISTEN: "80"
${MODULE_NAMES.map((m) => `      ${upper(m)}_UPSTREAM: ${m}:3000 resolve`).join('\n')}
    volumes:
      - ./deploy/nginx/toko.conf.template:/etc/nginx/templates/default.conf.template:ro
      - ./${DOCKER_DNS_CONF}:/etc/nginx/conf.d/00-docker-dns.conf:ro
    depends_on:
${MODULE_NAMES.map((m) => `      ${m}: { condition: service_healthy }`).join('\n')}`;

/** A module's service environment: itself, the others' URLs, its store, Redis, and its own `deploy.env`. */
function serviceEnv(m: ModuleName): [string, string][] {
  const def = definition(m);
  return [
    ['MODULES', m],
    ['REPLICAS', `\${${upper(m)}_REPLICAS:-1}`],
    ...MODULE_NAMES.filter((o) => o !== m).map((o): [string, string] => [
      `${upper(o)}_SERVICE_URL`,
      `http://${o}:3000`,
    ]),
    ['METRICS_PORT', '"9464"'],
    storeOf(m) === 'mongo'
      ? [`${upper(m)}_MONGODB_URL`, `mongodb://mongo:27017/${def.schema}`]
      : [`${upper(m)}_DATABASE_URL`, `postgres://toko:toko@${m}-db:5432/${def.schema}`],
    ['REDIS_URL', 'redis://redis:6379'],
    ['OTEL_EXPORTER_OTLP_ENDPOINT', '${OTEL_EXPORTER_OTLP_ENDPOINT:-}'],
    ['SERVICE_KEY', SECRET_KEY],
    ['TRUSTED_PROXIES', GATEWAY_ADDRESS],
    ...Object.entries(def.deploy?.env ?? {}),
  ];
}

/** A module's service: the shared image, its environment and volumes, started once its store, Redis and the modules it needs are healthy. */
function service(m: ModuleName): string {
  const def = definition(m);
  const needs = [...new Set([...(m === TOKEN_ISSUER ? [] : [TOKEN_ISSUER]), ...def.requires])];
  const dependsOn = [storeOf(m) === 'mongo' ? 'mongo' : `${m}-db`, 'redis', ...needs].map(
    (d) => `      ${d}: { condition: service_healthy }`,
  );
  return [
    `  ${m}:`,
    '    <<: *service',
    // No fixed host port and no container name: Compose can run several, all behind the gateway.
    '    deploy:',
    `      replicas: \${${upper(m)}_REPLICAS:-1}`,
    '    environment:',
    ...serviceEnv(m).map(([k, v]) => `      ${k}: ${v}`),
    ...(def.deploy?.volumes?.length ? ['    volumes:', ...def.deploy.volumes.map((v) => `      - ${v}`)] : []),
    '    depends_on:',
    ...dependsOn,
    '',
  ].join('\n');
}

const sqlModules = () => MODULE_NAMES.filter((m) => storeOf(m) === 'postgres');

/** The PostgreSQL of a SQL-backed module. */
function database(m: ModuleName): string {
  const db = definition(m).schema;
  return `  ${m}-db:
    image: postgres:16-alpine
    environment: { POSTGRES_USER: toko, POSTGRES_PASSWORD: toko, POSTGRES_DB: ${db} }
    volumes: [${m}-db-data:/var/lib/postgresql/data]
    healthcheck: { test: ["CMD-SHELL", "pg_isready -U toko -d ${db}"], <<: *healthy }
`;
}

const BACKING = `  mongo:
    image: mongo:7
    volumes: [mongo-data:/data/db]
    healthcheck: { test: ["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"], <<: *healthy }

  redis:
    image: redis:7-alpine
    # Events wait here on their way: kept on disk across restarts, never evicted.
    command: ["redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]
    volumes: [redis-data:/data]
    healthcheck: { test: ["CMD", "redis-cli", "ping"], <<: *healthy }`;

/** The monitoring services of a topology, with the Prometheus configuration that scrapes its services. */
const monitoringServices = (prometheusConfig: string) => `  prometheus:
    image: prom/prometheus:v3.1.0
    ports:
      - "${BIND}:9090:9090"
    volumes:
      - ./monitoring/prometheus/${prometheusConfig}:/etc/prometheus/prometheus.yml:ro
      - ./monitoring/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro

  grafana:
    image: grafana/grafana:11.4.0
    ports:
      - "${BIND}:3001:3000"
    environment:
      # Everyone signs in: admin, with GRAFANA_ADMIN_PASSWORD.
      GF_AUTH_ANONYMOUS_ENABLED: "false"
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
    environment:
      COLLECTOR_OTLP_ENABLED: "true"
    ports:
      - "${BIND}:16686:16686"`;

/** Where the monitoring UIs are published: this machine only, unless MONITORING_BIND says otherwise. */
const BIND = '${MONITORING_BIND:-127.0.0.1}';

/** The monitoring file of each topology: the base file it goes with, and its Prometheus configuration. */
export const MONITORING_FILES = {
  'docker-compose.monitoring.yml': { base: 'docker-compose.yml', prometheus: 'single.yml', name: 'the single process' },
  'docker-compose.split.monitoring.yml': {
    base: 'docker-compose.split.yml',
    prometheus: 'split.yml',
    name: 'the split services',
  },
} as const;

export function renderMonitoringCompose(file: keyof typeof MONITORING_FILES): string {
  const { base, prometheus, name } = MONITORING_FILES[file];
  const secrets = base === 'docker-compose.split.yml' ? 'SERVICE_KEY=… ADMIN_PASSWORD=…' : 'ADMIN_PASSWORD=…';
  return `# Prometheus (scraping every toko service), Grafana with the toko dashboard, and
# Jaeger, for ${name} of ${base}. A file of its own, given with a second -f,
# because Compose interpolates every file it reads before it looks at
# profiles: GRAFANA_ADMIN_PASSWORD is asked for only with this file. Compose v2:
#   ${secrets} GRAFANA_ADMIN_PASSWORD=… docker compose -f ${base} -f ${file} up --build
# Published on 127.0.0.1 only (Prometheus and Jaeger have no sign-in of their
# own, Grafana has no anonymous viewers): MONITORING_BIND=<address> publishes them there.
# Generated by \`npm run generate\` (scripts/generate/compose.ts): edit the generator, not this file.

services:
${monitoringServices(prometheus)}
`;
}

/** Named volumes: the modules' own (`deploy.volumes`), each database's, MongoDB's and Redis's. */
function volumes(): string[] {
  return [
    ...MODULE_NAMES.flatMap((m) => (definition(m).deploy?.volumes ?? []).map((v) => v.split(':')[0]!)),
    ...sqlModules().map((m) => `${m}-db-data`),
    'mongo-data',
    'redis-data',
  ];
}

export function renderSplitCompose(): string {
  return `${header()}

${ANCHORS}

services:
${gateway()}

${MODULE_NAMES.map(service).join('\n')}
${sqlModules().map(database).join('\n')}
${BACKING}

networks:
  default:
    ipam:
      config:
        - subnet: ${SUBNET}

volumes:
${volumes()
  .map((v) => `  ${v}:`)
  .join('\n')}
`;
}
