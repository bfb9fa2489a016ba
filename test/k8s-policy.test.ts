import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Deployment } from 'kubernetes-types/apps/v1.js';
import type { ConfigMap, Container, Service } from 'kubernetes-types/core/v1.js';
import type { NetworkPolicy } from 'kubernetes-types/networking/v1.js';
import { FIGURES, FOOTPRINT_FILE } from '../scripts/k8s/figures.ts';
import { NEXT_UPSTREAM_TRIES, renderGatewayTemplate } from '../scripts/generate/nginx.ts';
import { K8S_DIR, renderOverlay, topologyOf, TOPOLOGIES } from '../scripts/k8s/index.ts';
import { MONITORING_NAMESPACE } from '../scripts/k8s/network.ts';
import { MODULE_NAMES } from '../src/registry.ts';
import {
  allowed,
  findKubectl,
  podEndpoint,
  policyProblems,
  render,
  schemaProblems,
  topologyProblems,
  type Endpoint,
  type K8sObject,
} from './helpers/k8s.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const OVERLAYS = TOPOLOGIES.map((t) => t.overlay);
const kubectl = findKubectl();
if (!kubectl) console.warn('Kubernetes policy checks skipped: kubectl is not installed (under CI it is an error)');

const rendered = new Map<string, K8sObject[]>();
const overlay = (name: string) => {
  if (!rendered.has(name)) rendered.set(name, render(`${K8S_DIR}/overlays/${name}`));
  return structuredClone(rendered.get(name)!);
};
const find = <T>(objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name.startsWith(name));
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o as unknown as T & K8sObject;
};
const deployment = (objects: K8sObject[], name: string) => find<Deployment>(objects, 'Deployment', name);
const server = (objects: K8sObject[], name: string) =>
  deployment(objects, name).spec!.template.spec!.containers[0] as Container;
const configMap = (objects: K8sObject[], name: string) => find<ConfigMap>(objects, 'ConfigMap', name).data!;
const without = (objects: K8sObject[], kind: string, name: string) =>
  objects.filter((o) => !(o.kind === kind && o.metadata.name === name));

/** A fault, done to a copy of the rendered split overlay, and the problem a check must name for it. */
interface Fault {
  fault: string;
  apply: (o: K8sObject[]) => K8sObject[] | void;
  problem: RegExp;
}

const POLICY_FAULTS: Fault[] = [
  {
    fault: 'no readiness probe',
    apply: (o) => void delete server(o, 'toko-order').readinessProbe,
    problem: /^Deployment toko-order: container toko has no readinessProbe$/,
  },
  {
    fault: 'no startup probe on the gateway',
    apply: (o) => void delete server(o, 'toko-gateway').startupProbe,
    problem: /^Deployment toko-gateway: container nginx has no startupProbe$/,
  },
  {
    fault: 'liveness on /health/ready',
    apply: (o) => void (server(o, 'toko-user').livenessProbe!.httpGet!.path = '/health/ready'),
    problem: /^Deployment toko-user: .*liveness probe checks dependencies/,
  },
  {
    fault: 'readiness on /health',
    apply: (o) => void (server(o, 'toko-user').readinessProbe!.httpGet!.path = '/health'),
    problem: /^Deployment toko-user: container toko's readiness probe is not \/health\/ready$/,
  },
  {
    fault: 'no memory limit on the migrate step',
    apply: (o) =>
      void delete deployment(o, 'toko-product').spec!.template.spec!.initContainers![0]!.resources!.limits!.memory,
    problem: /^Deployment toko-product: container migrate has no memory limit$/,
  },
  {
    fault: 'no preStop delay',
    apply: (o) => void delete server(o, 'toko-notification').lifecycle,
    problem: /^Deployment toko-notification: container toko has no preStop delay$/,
  },
  {
    fault: 'a grace period shorter than the drain',
    apply: (o) => void (deployment(o, 'toko-user').spec!.template.spec!.terminationGracePeriodSeconds = 15),
    problem: /^Deployment toko-user: terminationGracePeriodSeconds 15 does not exceed .* \(20 s\)$/,
  },
  {
    fault: 'a longer drain than the grace period allows (DRAIN_DELAY_MS)',
    apply: (o) => void (configMap(o, 'toko-common').DRAIN_DELAY_MS = '25000'),
    problem: /^Deployment toko-user: terminationGracePeriodSeconds 30 does not exceed .* \(40 s\)$/,
  },
  {
    fault: 'a drain left to its default',
    apply: (o) => void delete configMap(o, 'toko-common').DRAIN_DELAY_MS,
    problem: /^Deployment toko-order: container toko leaves DRAIN_DELAY_MS to its default/,
  },
  {
    fault: 'a rollout that takes pods down first',
    apply: (o) => void (deployment(o, 'toko-order').spec!.strategy!.rollingUpdate!.maxUnavailable = 1),
    problem: /^Deployment toko-order: rolls out with pods unavailable/,
  },
  {
    fault: 'a writable root filesystem',
    apply: (o) => void (server(o, 'toko-user').securityContext!.readOnlyRootFilesystem = false),
    problem: /^Deployment toko-user: container toko has a writable root filesystem$/,
  },
  {
    fault: 'root allowed',
    apply: (o) => void delete deployment(o, 'toko-gateway').spec!.template.spec!.securityContext!.runAsNonRoot,
    problem: /^Deployment toko-gateway: pods may run as root/,
  },
  {
    fault: 'no PodDisruptionBudget for two replicas',
    apply: (o) => without(o, 'PodDisruptionBudget', 'toko-product'),
    problem: /^Deployment toko-product: runs 2 replicas and no PodDisruptionBudget/,
  },
  {
    fault: 'a replica count beside the autoscaler',
    apply: (o) => void (deployment(o, 'toko-order').spec!.replicas = 2),
    problem: /^Deployment toko-order: sets spec.replicas beside its autoscaler/,
  },
  {
    fault: 'no autoscaler',
    apply: (o) => without(o, 'HorizontalPodAutoscaler', 'toko-gateway'),
    problem: /^Deployment toko-gateway: has no autoscaling\/v2 HorizontalPodAutoscaler$/,
  },
  {
    fault: 'a selector that misses the pods',
    apply: (o) =>
      void (deployment(o, 'toko-order').spec!.selector.matchLabels!['app.kubernetes.io/instance'] = 'order'),
    problem: /^Deployment toko-order: its selector does not match its pod template labels$/,
  },
  {
    fault: 'a Service selecting nothing',
    apply: (o) => void (find<Service>(o, 'Service', 'toko-order').spec!.selector = { app: 'order' }),
    problem: /^Service toko-order: selects the pods of 0 workloads$/,
  },
  {
    fault: 'a Service port no container opens',
    apply: (o) => void (find<Service>(o, 'Service', 'toko-product').spec!.ports![0]!.targetPort = 3001),
    problem: /^Service toko-product: port http targets 3001, which no container of Deployment toko-product opens$/,
  },
  {
    fault: 'a ServiceMonitor scraping a port the Service has not',
    apply: (o) =>
      void (find<{ spec: { endpoints: { port: string }[] } }>(
        o,
        'ServiceMonitor',
        'toko-user',
      ).spec.endpoints[0]!.port = 'prometheus'),
    problem: /^ServiceMonitor toko-user: scrapes port prometheus, which Service toko-user has not$/,
  },
  {
    fault: 'the :latest image',
    apply: (o) => void (server(o, 'toko-order').image = 'toko:latest'),
    problem: /^Deployment toko-order: container toko runs toko:latest/,
  },
  {
    fault: 'an untagged image',
    apply: (o) => void (server(o, 'toko-gateway').image = 'nginxinc/nginx-unprivileged'),
    problem: /^Deployment toko-gateway: container nginx runs nginxinc\/nginx-unprivileged: no :latest/,
  },
  {
    fault: 'a password in a ConfigMap',
    apply: (o) => void (configMap(o, 'toko-user-config').ADMIN_PASSWORD = 'correct horse battery'),
    problem: /^ConfigMap toko-user-config-\w+: holds ADMIN_PASSWORD, a secret/,
  },
  {
    fault: 'a database URL with its password in a ConfigMap',
    apply: (o) => void (configMap(o, 'toko-common').OTEL_EXPORTER_OTLP_ENDPOINT = 'http://otel:s3cret@collector:4318'),
    problem: /^ConfigMap toko-common-\w+: holds OTEL_EXPORTER_OTLP_ENDPOINT, a secret/,
  },
  {
    fault: 'a secret written into the Deployment',
    apply: (o) => void server(o, 'toko-order').env!.push({ name: 'SERVICE_KEY', value: 'a-secret-in-plain-sight' }),
    problem: /^Deployment toko-order: container toko has SERVICE_KEY as a literal value/,
  },
];

const TOPOLOGY_FAULTS: Fault[] = [
  {
    fault: 'a misspelled variable',
    apply: (o) => void (configMap(o, 'toko-order-config').ORDER_MAX_QUANTITIY = '10'),
    problem: /^Deployment toko-order: sets ORDER_MAX_QUANTITIY, which the configuration does not read$/,
  },
  {
    fault: 'a value the configuration refuses',
    apply: (o) => void (configMap(o, 'toko-common').LOG_LEVEL = 'loud'),
    problem: /^Deployment toko-user: invalid configuration: LOG_LEVEL: expected one of/,
  },
  {
    fault: 'a service URL pointing at the wrong Service',
    apply: (o) => void (configMap(o, 'toko-order-config').PRODUCT_SERVICE_URL = 'http://toko-user:3000'),
    problem:
      /^Deployment toko-order: PRODUCT_SERVICE_URL http:\/\/toko-user:3000 does not reach the Deployment hosting product/,
  },
  {
    fault: 'a service URL missing',
    apply: (o) => void delete configMap(o, 'toko-notification-config').USER_SERVICE_URL,
    problem: /^Deployment toko-notification: notification needs user: USER_SERVICE_URL is not set$/,
  },
  {
    fault: 'a module hosted twice',
    apply: (o) => void (configMap(o, 'toko-product-config').MODULES = 'product,order'),
    problem: /^order is hosted by 2 Deployments \((toko-product, toko-order|toko-order, toko-product)\)$/,
  },
  {
    fault: 'a module hosted nowhere',
    apply: (o) => without(o, 'Deployment', 'toko-notification'),
    problem: /^notification is hosted by 0 Deployments/,
  },
  {
    fault: 'a module without its database',
    apply: (o) => {
      const c = server(o, 'toko-order');
      c.env = c.env!.filter((e) => e.name !== 'ORDER_DATABASE_URL');
      deployment(o, 'toko-order').spec!.template.spec!.initContainers![0]!.env = c.env;
    },
    problem: /^Deployment toko-order: order has no database URL/,
  },
  {
    fault: 'a Secret key nobody knows what it holds',
    apply: (o) =>
      void server(o, 'toko-user').env!.push({
        name: 'SMTP_URL',
        valueFrom: { secretKeyRef: { name: 'toko-secrets', key: 'MAIL' } },
      }),
    problem: /^Deployment toko-user: SMTP_URL: no stand-in for Secret key MAIL/,
  },
  {
    fault: 'user replicas each making their own signing key',
    apply: (o) => {
      const c = server(o, 'toko-user');
      c.env = c.env!.filter((e) => !e.name.startsWith('JWT_'));
      deployment(o, 'toko-user').spec!.template.spec!.initContainers![0]!.env = c.env;
    },
    problem: /^Deployment toko-user: its replicas would each make a signing key/,
  },
  {
    fault: 'a migrate step with another configuration',
    apply: (o) => void deployment(o, 'toko-order').spec!.template.spec!.initContainers![0]!.env!.pop(),
    problem: /^Deployment toko-order: init container migrate does not see the server's configuration$/,
  },
  {
    fault: 'the gateway sending a module to the wrong Service',
    apply: (o) => {
      const data = configMap(o, 'toko-gateway-nginx');
      data['default.conf'] = data['default.conf']!.replace(
        /(upstream toko_order \{ (?:zone \S+ \S+; )?server )toko-order:/,
        '$1toko-product:',
      );
    },
    problem: /^the gateway sends order to toko-product, not the Service of the Deployment hosting order$/,
  },
  {
    fault: "the gateway listing a Service once (a crashed pod's request never asked again)",
    apply: (o) => {
      const data = configMap(o, 'toko-gateway-nginx');
      data['default.conf'] = data['default.conf']!.replace(
        /(upstream toko_user \{ (?:zone \S+ \S+; )?)(?:server toko-user:3000 max_fails=0; )+/,
        '$1server toko-user:3000 max_fails=0; ',
      );
    },
    problem: /^the gateway lists user's Service 1 time\(s\), fewer than its 3 tries/,
  },
  {
    fault: "the gateway's later entries for a module naming another Service",
    apply: (o) => {
      const data = configMap(o, 'toko-gateway-nginx');
      data['default.conf'] = data['default.conf']!.replace(
        /(upstream toko_user \{ (?:zone \S+ \S+; )?server toko-user:3000 max_fails=0; )server toko-user:/,
        '$1server toko-order:',
      );
    },
    problem:
      /^the gateway's upstream for user has an entry that is not its Service, or is held back: server toko-order:3000/,
  },
  {
    fault: 'the gateway without a bound on its tries',
    apply: (o) => {
      const data = configMap(o, 'toko-gateway-nginx');
      data['default.conf'] = data['default.conf']!.replace(/^\s*proxy_next_upstream_tries \d+;\n/m, '\n');
    },
    problem: /^the gateway sets no proxy_next_upstream_tries/,
  },
  {
    fault: 'the gateway counting the failures of a Service (one pod failing takes it all off)',
    apply: (o) => {
      const data = configMap(o, 'toko-gateway-nginx');
      data['default.conf'] = data['default.conf']!.replace(
        /server toko-order:3000 max_fails=0;/g,
        'server toko-order:3000 max_fails=2 fail_timeout=3s;',
      );
    },
    problem: /^the gateway counts order's failures: one failing pod would take its whole Service off the gateway$/,
  },
];

describe.skipIf(!kubectl)('policy', () => {
  it.each(OVERLAYS)('holds for every object of the %s overlay', (name) => {
    expect(policyProblems(overlay(name))).toEqual([]);
  });

  it.each(POLICY_FAULTS)('names the fault: $fault', ({ apply, problem }) => {
    const objects = overlay('split');
    const problems = policyProblems(apply(objects) ?? objects);
    expect(problems).toContainEqual(expect.stringMatching(problem));
  });

  it('asks for no less memory than the footprint bench measured', () => {
    const bench = JSON.parse(readFileSync(path.join(ROOT, FOOTPRINT_FILE), 'utf8')) as {
      footprint: { rows: { topology: string; rssAfterLoad: number; processes: { name: string; mib: number }[] }[] };
    };
    const mib = (q: string) => Number(/^(\d+)Mi$/.exec(q)?.[1] ?? NaN);
    for (const [name, f] of Object.entries(FIGURES)) {
      const row = bench.footprint.rows.find((r) => r.topology === f.measured.topology)!;
      const nodes = row.processes.filter((p) => p.name === 'node').map((p) => p.mib);
      const measured = {
        // The whole tree after load, less npm and the shell that started node.
        'node after load':
          row.rssAfterLoad - row.processes.filter((p) => p.name !== 'node').reduce((s, p) => s + p.mib, 0),
        // The launcher (the largest node) holds the embedded database, not a service.
        'largest service idle': Math.max(...nodes.sort((a, b) => b - a).slice(1)),
        nginx: row.processes.filter((p) => p.name === 'nginx').reduce((s, p) => s + p.mib, 0),
      }[f.measured.what];
      expect(mib(f.resources.requests.memory), `${name}: request vs ${f.measured.what}`).toBeGreaterThanOrEqual(
        measured,
      );
      expect(mib(f.resources.limits.memory)).toBeGreaterThan(mib(f.resources.requests.memory));
    }
  });
});

describe.skipIf(!kubectl)('topology (the compose check, applied to the manifests)', () => {
  it.each(OVERLAYS)('holds for the %s overlay', (name) => {
    expect(topologyProblems(overlay(name))).toEqual([]);
  });

  it.each(TOPOLOGY_FAULTS)('names the fault: $fault', ({ apply, problem }) => {
    const objects = overlay('split');
    expect(topologyProblems(apply(objects) ?? objects)).toContainEqual(expect.stringMatching(problem));
  });

  it('names a Redis that may lose or evict events (dev overlay)', () => {
    const objects = overlay('dev');
    const redis = find<{ spec: { template: { spec: { containers: Container[] } } } }>(
      objects,
      'StatefulSet',
      'toko-redis',
    );
    redis.spec.template.spec.containers[0]!.args = ['--dir', '/data'];
    expect(topologyProblems(objects)).toEqual([
      'StatefulSet toko-redis: Redis without an append-only file',
      'StatefulSet toko-redis: Redis may evict events',
    ]);
  });
});

describe.skipIf(!kubectl)('network policy', () => {
  const elsewhere: Endpoint = { namespace: 'shop-frontend', labels: { app: 'web' } };
  const prometheus: Endpoint = { namespace: MONITORING_NAMESPACE, labels: { app: 'prometheus' } };
  const dns: Endpoint & { ports: Map<string, number> } = {
    namespace: 'kube-system',
    labels: { 'k8s-app': 'kube-dns' },
    ports: new Map(),
  };

  /** Who reaches what, in one overlay. */
  function reach(objects: K8sObject[], service: string) {
    const gateway = podEndpoint(objects, 'toko-gateway');
    const svc = podEndpoint(objects, service);
    const http = svc.ports.get('http')!;
    const metrics = svc.ports.get('metrics')!;
    return {
      'outside → gateway': allowed(objects, 'outside', gateway, gateway.ports.get('http')!),
      'outside → service': allowed(objects, 'outside', svc, http),
      'another namespace → service': allowed(objects, elsewhere, svc, http),
      'gateway → service': allowed(objects, gateway, svc, http),
      'gateway → service metrics': allowed(objects, gateway, svc, metrics),
      'service → service (contracts, /internal)': allowed(objects, svc, svc, http),
      'monitoring → service metrics': allowed(objects, prometheus, svc, metrics),
      'monitoring → service': allowed(objects, prometheus, svc, http),
      'outside → service metrics': allowed(objects, 'outside', svc, metrics),
      'service → DNS': allowed(objects, svc, dns, 53),
      'service → a database server': allowed(objects, svc, 'outside', 5432),
      'service → anything else outside': allowed(objects, svc, 'outside', 22),
      'gateway → outside': allowed(objects, gateway, 'outside', 443),
      'another namespace → service metrics': allowed(objects, elsewhere, svc, metrics),
    };
  }
  const EXPECTED = {
    'outside → gateway': true,
    'outside → service': false,
    'another namespace → service': false,
    'gateway → service': true,
    'gateway → service metrics': false,
    'service → service (contracts, /internal)': true,
    'monitoring → service metrics': true,
    'monitoring → service': false,
    'outside → service metrics': false,
    'service → DNS': true,
    'service → a database server': true,
    'service → anything else outside': false,
    'gateway → outside': false,
    'another namespace → service metrics': false,
  };

  it.each(OVERLAYS)('denies by default and lets through exactly what toko uses (%s)', (name) => {
    const objects = overlay(name);
    for (const host of TOPOLOGIES.find((t) => t.overlay === name)!.hosts)
      expect(reach(objects, host.name), host.name).toEqual(EXPECTED);
  });

  it('lets only toko services reach the dev overlay’s PostgreSQL and Redis', () => {
    const objects = overlay('dev');
    const service = podEndpoint(objects, 'toko-order');
    const gateway = podEndpoint(objects, 'toko-gateway');
    for (const [store, port] of [
      ['toko-postgres', 5432],
      ['toko-redis', 6379],
    ] as const) {
      const s = podEndpoint(objects, store);
      expect(allowed(objects, service, s, port), `order → ${store}`).toBe(true);
      expect(allowed(objects, gateway, s, port), `gateway → ${store}`).toBe(false);
      expect(allowed(objects, 'outside', s, port), `outside → ${store}`).toBe(false);
      expect(allowed(objects, elsewhere, s, port), `another namespace → ${store}`).toBe(false);
    }
  });

  it('sees the hole an allow-all policy makes (fault)', () => {
    const objects = overlay('split');
    const allowAll: NetworkPolicy = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-all', namespace: 'toko' },
      spec: { podSelector: {}, policyTypes: ['Ingress'], ingress: [{}] },
    };
    objects.push(allowAll as unknown as K8sObject);
    const r = reach(objects, 'toko-user');
    expect(r['outside → service']).toBe(true);
    expect(r['outside → service metrics']).toBe(true);
  });

  it('sees metrics opened to every namespace (fault)', () => {
    const objects = overlay('split');
    const services = find<NetworkPolicy>(objects, 'NetworkPolicy', 'toko-services');
    services.spec!.ingress![1]!.from = [{ namespaceSelector: {} }];
    expect(reach(objects, 'toko-product')).toEqual({ ...EXPECTED, 'another namespace → service metrics': true });
  });
});

describe.skipIf(!kubectl)('an overlay for extracting a module (scripts/k8s/overlay.ts)', () => {
  it('hosts the rest in the monolith and one module on its own, and passes every check', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-k8s-extract-'));
    try {
      const rest = MODULE_NAMES.filter((m) => m !== 'product');
      const t = topologyOf({ toko: rest, 'toko-product': ['product'] });
      const files = renderOverlay(t, renderGatewayTemplate(), {
        root: path.relative(dir, path.join(ROOT, K8S_DIR)),
        banner: 'test',
        applyAs: dir,
      });
      for (const [file, text] of Object.entries(files)) writeFileSync(path.join(dir, file), text);
      const objects = render(dir);
      expect(schemaProblems(objects)).toEqual([]);
      expect(policyProblems(objects)).toEqual([]);
      expect(topologyProblems(objects)).toEqual([]);
      expect(configMap(objects, 'toko-config').MODULES).toBe(rest.join(','));
      expect(configMap(objects, 'toko-product-config').USER_SERVICE_URL).toBe('http://toko:3000');
      // `kubectl apply -l app.kubernetes.io/instance=toko-product` starts the new service first, its settings included.
      const own = objects.filter((o) => o.metadata.labels?.['app.kubernetes.io/instance'] === 'toko-product');
      expect(own.map((o) => o.kind).sort()).toEqual(
        [
          'ConfigMap',
          'Deployment',
          'HorizontalPodAutoscaler',
          'PodDisruptionBudget',
          'Service',
          'ServiceMonitor',
        ].sort(),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a hosting that leaves a module out or hosts one twice', () => {
    expect(() => topologyOf({ toko: ['user', 'order'], 'toko-product': ['product', 'order'] })).toThrow(
      /order is hosted 2 times.*notification is hosted 0 times/,
    );
  });
});

describe('docs/kubernetes.md', () => {
  it('says how many times the gateway lists a Service: once per try the template sets', () => {
    const docs = readFileSync(path.join(ROOT, 'docs/kubernetes.md'), 'utf8').replace(/\s+/g, ' ');
    expect(docs).toContain(`(\`proxy_next_upstream_tries\`, ${NEXT_UPSTREAM_TRIES})`);
  });

  it.skipIf(!kubectl)('names every key of the Secret that an overlay reads', () => {
    const docs = readFileSync(path.join(ROOT, 'docs/kubernetes.md'), 'utf8');
    const keys = new Set<string>();
    for (const name of OVERLAYS)
      for (const o of overlay(name))
        JSON.stringify(o, (k, v: unknown) => {
          if (k === 'secretKeyRef') keys.add((v as { key: string }).key);
          return v;
        });
    // A module's own database (or MongoDB) key is named by the pattern the docs give, so a new module's is documented too.
    const perModule = (k: string) =>
      MODULE_NAMES.some((m) => k === `${m.toUpperCase()}_DATABASE_URL` || k === `${m.toUpperCase()}_MONGODB_URL`) &&
      docs.includes(`\`<M>${k.slice(k.indexOf('_'))}\``);
    expect([...keys].filter((k) => !docs.includes(`\`${k}\``) && !perModule(k))).toEqual([]);
    expect(keys.size).toBeGreaterThan(MODULE_NAMES.length);
  });
});
