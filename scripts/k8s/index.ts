/**
 * The Kubernetes manifests under deploy/k8s, written by `npm run generate`
 * from the module registry like the nginx and compose files: a module's
 * registry line gives it its Deployment, Service, gateway routes, settings
 * and secrets in every overlay. Kustomize (`kubectl apply -k`):
 *   base/                   namespace, shared settings, network policies, the nginx gateway
 *   components/monitoring/  the alert rules (PrometheusRule) and the Grafana dashboard
 *   overlays/monolith/      one Deployment hosting every module
 *   overlays/split/         a Deployment per module
 *   overlays/dev/           the split plus PostgreSQL and Redis of its own, for a laptop cluster
 * test/k8s-render.test.ts and test/k8s-policy.test.ts check what they render.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { stringify, parse } from 'yaml';
import type { ConfigMap, Namespace } from 'kubernetes-types/core/v1.js';
import type { IPrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import pkg from '../../package.json' with { type: 'json' };
import { MODULE_NAMES, TOKEN_ISSUER, type ModuleName } from '../../src/registry.ts';
import { NEXT_UPSTREAM_TRIES } from '../generate/nginx.ts';
import { definition, ROOT, storeOf, upper } from '../generate/registry.ts';
import { FIGURES, type Figure } from './figures.ts';
import { networkPolicies, storePolicy } from './network.ts';
import {
  autoscaler,
  COMMON_CONFIG,
  devPostgres,
  devRedis,
  disruptionBudget,
  GATEWAY,
  GATEWAY_CONFIG,
  GATEWAY_PORT,
  gatewayDeployment,
  gatewayService,
  HTTP_PORT,
  labelsOf,
  METRICS_PORT,
  serviceMonitor,
  STOP,
  tokoDeployment,
  tokoService,
  type SecretVariable,
} from './workloads.ts';

export const K8S_DIR = 'deploy/k8s';
export const NAMESPACE = 'toko';
/** The image `docker build -t toko:<version> .` makes; a registry's name is set by an overlay of your own (docs/kubernetes.md). */
export const IMAGE = `toko:${pkg.version}`;
/** The pod network, as kind and minikube set it up: the gateway pods' addresses, whose X-Forwarded-For the services trust. Set yours. */
export const POD_CIDR = '10.244.0.0/16';

const BANNER =
  'Generated from the module registry (src/registry.ts) by `npm run generate`: edit the generator (scripts/k8s/) or the modules, not this file.';
/** Plain YAML as people write it for Kubernetes: no anchors and aliases for repeated parts, no folded lines. */
const YAML_OPTIONS = { lineWidth: 0, aliasDuplicateObjects: false } as const;
const comment = (...lines: string[]) => lines.map((l) => (l ? `# ${l}` : '#')).join('\n') + '\n';
const yamlDocs = (header: string, docs: unknown[]) =>
  header + docs.map((d) => stringify(d, YAML_OPTIONS)).join('---\n');
const envFile = (header: string, vars: Record<string, string>) =>
  header +
  Object.entries(vars)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n') +
  '\n';

/**
 * A module's own deployment variables, as its registry line gives them for
 * compose: `${X:?why}` is a secret (the Secret's key X), `${X:-d}` a setting
 * with its default, anything else a setting as written.
 */
function moduleVariables(m: ModuleName): { settings: Record<string, string>; secrets: string[] } {
  const settings: Record<string, string> = {};
  const secrets: string[] = [];
  for (const [name, value] of Object.entries(definition(m).deploy?.env ?? {})) {
    const required = /^\$\{([A-Z0-9_]+):\?[^}]*\}$/.exec(value);
    const withDefault = /^\$\{([A-Z0-9_]+):-([^}]*)\}$/.exec(value);
    if (required) secrets.push(name);
    else if (withDefault) settings[name] = withDefault[2]!;
    else settings[name] = value.replace(/^"(.*)"$/, '$1');
  }
  return { settings, secrets };
}

/** One overlay: which Deployments host which modules, and where their data lives. */
export interface Topology {
  overlay: string;
  /** One line on what it is, for its kustomization.yaml. */
  summary: string;
  hosts: { name: string; modules: ModuleName[]; figure: Figure }[];
  /** The autoscaler's bounds: the replicas each Deployment runs at least, and at most. */
  replicas: number;
  maxReplicas: number;
  /** `shared`: one DATABASE_URL for every SQL module (a schema each); `per-module`: `<M>_DATABASE_URL` each (a database per service). */
  database: 'shared' | 'per-module';
  /** Whether modules that keep their data in MongoDB do so (the dev overlay has none: they use SQL). */
  mongo: boolean;
  monitoring: boolean;
  /** PostgreSQL and Redis of its own (the dev overlay). */
  stores?: boolean;
}

const serviceName = (m: ModuleName) => `toko-${m}`;

/**
 * Any hosting of the modules (each exactly once), as an overlay like the
 * monolith's: one database for every SQL module unless told otherwise, the
 * monitoring component. For extracting modules one at a time.
 */
export function topologyOf(
  hosts: Record<string, ModuleName[]>,
  o: { database?: Topology['database']; replicas?: number } = {},
): Topology {
  const problems: string[] = [];
  for (const name of Object.keys(hosts))
    if (!/^toko(-[a-z0-9]+)*$/.test(name)) problems.push(`${name}: a Deployment's name is toko or toko-<something>`);
  for (const m of MODULE_NAMES) {
    const n = Object.values(hosts).filter((ms) => ms.includes(m)).length;
    if (n !== 1) problems.push(`${m} is hosted ${n} times: each module exactly once`);
  }
  for (const m of Object.values(hosts).flat())
    if (!(MODULE_NAMES as string[]).includes(m)) problems.push(`${m}: no such module (${MODULE_NAMES.join(', ')})`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  const replicas = o.replicas ?? 2;
  return {
    overlay: 'custom',
    summary: Object.entries(hosts)
      .map(([name, ms]) => `${name}: ${ms.join(', ')}`)
      .join('; '),
    hosts: Object.entries(hosts).map(([name, modules]) => ({
      name,
      modules: MODULE_NAMES.filter((m) => modules.includes(m)),
      figure: modules.length > 1 ? FIGURES.monolith : FIGURES.service,
    })),
    replicas,
    maxReplicas: Math.max(replicas, 6),
    database: o.database ?? 'shared',
    mongo: true,
    monitoring: true,
  };
}

export const TOPOLOGIES: Topology[] = [
  {
    overlay: 'monolith',
    summary: 'Every module in one Deployment (toko, 2 replicas) behind the gateway.',
    hosts: [{ name: 'toko', modules: [...MODULE_NAMES], figure: FIGURES.monolith }],
    replicas: 2,
    maxReplicas: 8,
    database: 'shared',
    mongo: true,
    monitoring: true,
  },
  {
    overlay: 'split',
    summary: 'A Deployment per module behind the gateway, each with its own database (a URL each in the Secret).',
    hosts: MODULE_NAMES.map((m) => ({ name: serviceName(m), modules: [m], figure: FIGURES.service })),
    replicas: 2,
    maxReplicas: 6,
    database: 'per-module',
    mongo: true,
    monitoring: true,
  },
  {
    overlay: 'dev',
    summary:
      'The split on a laptop cluster: one replica each, PostgreSQL and Redis of its own, every module on PostgreSQL.',
    hosts: MODULE_NAMES.map((m) => ({ name: serviceName(m), modules: [m], figure: FIGURES.service })),
    replicas: 1,
    maxReplicas: 2,
    database: 'shared',
    mongo: false,
    monitoring: false,
    stores: true,
  },
];

/** What a Deployment reads: its settings (its ConfigMap) and its secrets (keys of the Secret). */
export function variablesOf(t: Topology, host: Topology['hosts'][number]) {
  const hostOf = (m: ModuleName) => t.hosts.find((h) => h.modules.includes(m))!;
  const settings: Record<string, string> = { MODULES: host.modules.join(',') };
  for (const m of MODULE_NAMES.filter((o) => !host.modules.includes(o)))
    settings[`${upper(m)}_SERVICE_URL`] = `http://${hostOf(m).name}:${HTTP_PORT}`;
  const secrets: SecretVariable[] = [{ name: 'SERVICE_KEY' }, { name: 'REDIS_URL' }];
  const sql = host.modules.filter((m) => !(t.mongo && storeOf(m) === 'mongo'));
  if (sql.length > 0 && t.database === 'shared') secrets.push({ name: 'DATABASE_URL' });
  for (const m of host.modules) {
    if (t.mongo && storeOf(m) === 'mongo') secrets.push({ name: `${upper(m)}_MONGODB_URL` });
    else if (t.database === 'per-module') secrets.push({ name: `${upper(m)}_DATABASE_URL` });
    const own = moduleVariables(m);
    Object.assign(settings, own.settings);
    for (const s of own.secrets) if (!secrets.some((x) => x.name === s)) secrets.push({ name: s });
  }
  // Every replica signs with the same key; a rotation adds the extra keys (docs/kubernetes.md).
  if (host.modules.includes(TOKEN_ISSUER))
    secrets.push(
      { name: 'JWT_PRIVATE_KEY' },
      { name: 'JWT_PUBLIC_KEY' },
      { name: 'JWT_EXTRA_PUBLIC_KEYS', optional: true },
    );
  return { settings, secrets };
}

/** The settings every toko process shares (ConfigMap toko-common). Never a secret: those are in the Secret. */
export const COMMON_SETTINGS: Record<string, string> = {
  NODE_ENV: 'production',
  HOST: '0.0.0.0',
  PORT: String(HTTP_PORT),
  // /metrics on a port of its own, open to the monitoring namespace only (network policy toko-services).
  METRICS_PORT: String(METRICS_PORT),
  LOG_LEVEL: 'info',
  DATA_DIR: '/data',
  // Each pod's init container migrates (under an advisory lock), so the server does not.
  MIGRATE_ON_START: 'false',
  // X-Forwarded-For is believed only from the pod network, where the gateway runs (and the network policy lets only it in).
  TRUSTED_PROXIES: POD_CIDR,
  DRAIN_DELAY_MS: String(STOP.drainDelayMs),
  SHUTDOWN_TIMEOUT_MS: String(STOP.shutdownTimeoutMs),
  // The pod's CPU limit, not the node's CPUs (which is what the default, availableParallelism(), sees).
  PASSWORD_WORKERS: '1',
};

/** The gateway's nginx config for one overlay: the registry's routes, each module's upstream the Service hosting it. */
function gatewayConf(t: Topology, template: string): string {
  const vars: Record<string, string> = { GATEWAY_LISTEN: String(GATEWAY_PORT) };
  for (const m of MODULE_NAMES)
    vars[`${upper(m)}_UPSTREAM`] = `${t.hosts.find((h) => h.modules.includes(m))!.name}:${HTTP_PORT}`;
  const header = comment(
    `The gateway of the ${t.overlay} overlay (ConfigMap ${GATEWAY_CONFIG}): deploy/nginx/toko.conf.template with its variables`,
    "filled in, each module's upstream the Service of the Deployment hosting it, listed once per try of the gateway",
    "(a Service is one address: nginx retries only on another entry). The template's own notes follow.",
  );
  return (
    header +
    template
      // A Service is one address (its ClusterIP), and nginx asks again only another entry of an upstream: listed
      // once, a request a crashed pod dropped, or a connection to a pod that is gone, would never be retried. So
      // a module's own upstream (`server ${USER_UPSTREAM} max_fails=...;`) lists its Service once per try; a
      // retry goes over another connection to the Service (kept alive or new), which kube-proxy sent to a pod
      // of its choosing. No entry is counted (`max_fails=0`), the readiness upstream's (`server ${X_UPSTREAM};`)
      // neither: all being one address, counting their failures would take the whole Service off the gateway
      // for `fail_timeout` when one of its pods fails.
      .replace(/server (\$\{[A-Z_]+_UPSTREAM\})([^;]*);/g, (_, variable: string, parameters: string) => {
        const entry = `server ${variable}${parameters.replace(/ (max_fails|fail_timeout)=\S+/g, '')} max_fails=0;`;
        return Array.from({ length: parameters ? NEXT_UPSTREAM_TRIES : 1 }, () => entry).join(' ');
      })
      .replace(/\$\{([A-Z_]+)\}/g, (_, name: string) => {
        if (!(name in vars))
          throw new Error(`the gateway template uses \${${name}}, which the Kubernetes gateway does not set`);
        return vars[name]!;
      })
  );
}

const kustomization = (header: string, body: Record<string, unknown>) =>
  header + stringify({ apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', ...body }, YAML_OPTIONS);

function renderBase(): Record<string, string> {
  const namespace: Namespace = {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name: NAMESPACE, labels: { 'app.kubernetes.io/part-of': 'toko' } },
  };
  return {
    'base/kustomization.yaml': kustomization(
      comment(
        'What every overlay shares: the namespace, the shared settings (ConfigMap toko-common), deny-by-default',
        'network policies and the nginx gateway (its config comes from the overlay: its upstreams are that overlay’s Services).',
        BANNER,
      ),
      {
        namespace: NAMESPACE,
        resources: ['namespace.yaml', 'network-policies.yaml', 'gateway.yaml'],
        configMapGenerator: [{ name: COMMON_CONFIG, envs: ['common.env'] }],
      },
    ),
    'base/namespace.yaml': yamlDocs(comment(BANNER), [namespace]),
    'base/common.env': envFile(
      comment(
        'Settings every toko process shares (ConfigMap toko-common). Secrets never go here: they are keys of the Secret toko-secrets.',
        `TRUSTED_PROXIES is the pod network (${POD_CIDR} on kind and minikube, 10.42.0.0/16 on k3d): set your cluster's.`,
        BANNER,
      ),
      COMMON_SETTINGS,
    ),
    'base/network-policies.yaml': yamlDocs(
      comment(
        'Deny by default; then clients reach the gateway, the gateway and toko pods reach the services, the monitoring',
        'namespace reaches /metrics, and toko reaches DNS and its databases. Policies see ports, not paths: /internal is',
        'kept from outside by the gateway (404) and by SERVICE_KEY. Kubelet probes are not subject to them on common CNIs.',
        BANNER,
      ),
      networkPolicies(),
    ),
    'base/gateway.yaml': yamlDocs(
      comment(
        'The nginx gateway in front of the services: the only pods clients reach. Expose Service toko-gateway with your',
        'Ingress controller or a LoadBalancer (docs/kubernetes.md).',
        BANNER,
      ),
      [
        gatewayDeployment(),
        gatewayService(),
        disruptionBudget(GATEWAY, 'gateway'),
        autoscaler(GATEWAY, 'gateway', 2, 6),
      ],
    ),
  };
}

function renderMonitoring(): Record<string, string> {
  const alerts = parse(readFileSync(path.join(ROOT, 'monitoring/prometheus/alerts.yml'), 'utf8')) as {
    groups: IPrometheusRule['spec']['groups'];
  };
  const rule: IPrometheusRule = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { name: 'toko', labels: { 'app.kubernetes.io/part-of': 'toko' } },
    spec: { groups: alerts.groups },
  };
  const dashboard: ConfigMap = {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    // The label Grafana's dashboard sidecar (kube-prometheus-stack) looks for.
    metadata: {
      name: 'toko-grafana-dashboard',
      labels: { 'app.kubernetes.io/part-of': 'toko', grafana_dashboard: '1' },
    },
    data: { 'toko.json': readFileSync(path.join(ROOT, 'monitoring/grafana/dashboards/toko.json'), 'utf8') },
  };
  return {
    'components/monitoring/kustomization.yaml':
      comment(
        'Alerts and dashboard for a cluster running the Prometheus operator (kube-prometheus-stack): the rules of',
        'monitoring/prometheus/alerts.yml as a PrometheusRule, monitoring/grafana/dashboards/toko.json as a ConfigMap.',
        BANNER,
      ) +
      stringify(
        {
          apiVersion: 'kustomize.config.k8s.io/v1alpha1',
          kind: 'Component',
          resources: ['prometheus-rule.yaml', 'grafana-dashboard.yaml'],
        },
        YAML_OPTIONS,
      ),
    'components/monitoring/prometheus-rule.yaml': yamlDocs(comment(BANNER), [rule]),
    'components/monitoring/grafana-dashboard.yaml': yamlDocs(comment(BANNER), [dashboard]),
  };
}

/**
 * One overlay's files, by their path in `dir`; `root` is deploy/k8s as seen
 * from `dir` (an overlay of your own may live elsewhere: scripts/k8s/overlay.ts).
 */
export function renderOverlay(
  t: Topology,
  gatewayTemplate: string,
  o: { root: string; banner: string; applyAs: string },
): Record<string, string> {
  const { root, banner } = o;
  const files: Record<string, string> = {};
  const generators: Record<string, unknown>[] = [
    { name: GATEWAY_CONFIG, files: ['default.conf=gateway.conf'], options: { labels: labelsOf(GATEWAY, 'gateway') } },
  ];
  const resources = [`${root}/base`];
  for (const host of t.hosts) {
    const own = hostFiles(t, host, banner);
    Object.assign(files, own.files);
    generators.push(own.generator);
    resources.push(own.resource);
  }
  files['gateway.conf'] = gatewayConf(t, gatewayTemplate);
  for (const [file, text] of Object.entries(extraFiles(t, banner))) {
    files[file] = text;
    resources.push(file);
  }
  files['kustomization.yaml'] = kustomization(
    comment(
      t.summary,
      `  kubectl apply -k ${o.applyAs}   (after creating the Secret toko-secrets: docs/kubernetes.md)`,
      banner,
    ),
    {
      namespace: NAMESPACE,
      resources,
      ...(t.monitoring ? { components: [`${root}/components/monitoring`] } : {}),
      configMapGenerator: generators,
    },
  );
  return files;
}

/** One Deployment's files in an overlay (its settings and its workload), its ConfigMap generator and its resource. */
function hostFiles(t: Topology, host: Topology['hosts'][number], banner: string) {
  const file = host.name === 'toko' ? 'toko' : host.name.replace(/^toko-/, '');
  const configMap = `${host.name}-config`;
  const { settings, secrets } = variablesOf(t, host);
  const replicas = `${t.replicas} ${t.replicas === 1 ? 'replica' : 'replicas'}`;
  const what = host.modules.length === MODULE_NAMES.length ? 'every module' : `the ${host.modules.join(', ')} module`;
  const files = {
    [`${file}.env`]: envFile(
      comment(
        `Settings of ${host.name} (ConfigMap ${configMap}): the modules it hosts and where the others are.`,
        banner,
      ),
      settings,
    ),
    [`${file}.yaml`]: yamlDocs(
      comment(
        `${host.name}: ${what}, ${replicas}, resources from the footprint bench (scripts/k8s/figures.ts).`,
        `Secrets, keys of the Secret toko-secrets: ${secrets.map((s) => s.name + (s.optional ? ' (optional)' : '')).join(', ')}.`,
        banner,
      ),
      [
        tokoDeployment({
          name: host.name,
          configMap,
          secrets,
          image: IMAGE,
          figure: host.figure,
        }),
        tokoService(host.name),
        disruptionBudget(host.name, 'service'),
        autoscaler(host.name, 'service', t.replicas, t.maxReplicas),
      ],
    ),
  };
  // Labelled like the Deployment, so `kubectl apply -l app.kubernetes.io/instance=...` takes its settings along.
  const generator = { name: configMap, envs: [`${file}.env`], options: { labels: labelsOf(host.name, 'service') } };
  return { files, generator, resource: `${file}.yaml` };
}

/** The overlay's ServiceMonitors and its own stores, when it has them: each a file and a resource. */
function extraFiles(t: Topology, banner: string): Record<string, string> {
  const files: Record<string, string> = {};
  if (t.monitoring) {
    files['monitoring.yaml'] = yamlDocs(
      comment('One ServiceMonitor per Service: Prometheus (operator) scrapes each pod’s metrics port.', banner),
      t.hosts.map((h) => serviceMonitor(h.name)),
    );
  }
  if (t.stores) {
    files['stores.yaml'] = yamlDocs(
      comment(
        'PostgreSQL and Redis for trying toko on a laptop cluster (kind, k3d, minikube): one replica each, on a volume.',
        'Not for production: there they are external, reached through the URLs in the Secret toko-secrets.',
        banner,
      ),
      [...devPostgres(), storePolicy('postgres', 'postgres'), ...devRedis(), storePolicy('redis', 'redis')],
    );
  }
  return files;
}

/** Every file under deploy/k8s, by its path from the repository root. */
export function renderKubernetes(gatewayTemplate: string): Record<string, string> {
  const files = {
    ...renderBase(),
    ...renderMonitoring(),
    ...Object.fromEntries(
      TOPOLOGIES.flatMap((t) =>
        Object.entries(
          renderOverlay(t, gatewayTemplate, {
            root: '../..',
            banner: BANNER,
            applyAs: `${K8S_DIR}/overlays/${t.overlay}`,
          }),
        ).map(([f, text]) => [`overlays/${t.overlay}/${f}`, text]),
      ),
    ),
  } as Record<string, string>;
  return Object.fromEntries(Object.entries(files).map(([f, text]) => [`${K8S_DIR}/${f}`, text]));
}

/**
 * The entries for the list of generated files (scripts/generate/index.ts): one per file, rendered on
 * demand (all at once, the first time one is asked for).
 */
export function kubernetesFiles(renderGatewayTemplate: () => string): { file: string; render: () => string }[] {
  let rendered: Record<string, string> | undefined;
  const all = () => (rendered ??= renderKubernetes(renderGatewayTemplate()));
  // The file names follow from the topologies alone; rendering with a stand-in template lists them cheaply.
  return Object.keys(renderKubernetes('')).map((file) => ({ file, render: () => all()[file]! }));
}
