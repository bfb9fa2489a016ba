/**
 * Offline checks of Kubernetes manifests (no cluster here): render with
 * `kubectl kustomize`, validate against the Kubernetes schema, catch unknown
 * fields with a typed check, and policy. Each check returns the problems it
 * finds, one line each, so a test can assert none for the real overlays and
 * the expected one for a fixture that carries the fault.
 */
import { generateKeyPairSync } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import * as core from 'kubernetes-models/v1';
import * as apps from 'kubernetes-models/apps/v1';
import * as autoscaling from 'kubernetes-models/autoscaling/v2';
import * as networking from 'kubernetes-models/networking.k8s.io/v1';
import * as policy from 'kubernetes-models/policy/v1';
import * as monitoring from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js';
import type { ConfigMap, Container, EnvVar, PodTemplateSpec, Service } from 'kubernetes-types/core/v1.js';
import type { LabelSelector } from 'kubernetes-types/meta/v1.js';
import type { NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort } from 'kubernetes-types/networking/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import {
  ConfigError,
  ENV_VARIABLES,
  loadConfig,
  MODULE_NAMES,
  type Config,
  type ModuleName,
} from '../../src/config.ts';
import { MODULE_DEFINITIONS, TOKEN_ISSUER } from '../../src/registry.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}
const id = (o: K8sObject) => `${o.kind} ${o.metadata.name}`;

// ---------------------------------------------------------------- rendering

/** Where kubectl is, or undefined. Under CI a missing kubectl is an error, never a quiet skip. */
export function findKubectl(): string | undefined {
  const found = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
  if (found.status === 0) return 'kubectl';
  if (process.env.CI)
    throw new Error(
      'kubectl is missing: the Kubernetes manifest checks render deploy/k8s with `kubectl kustomize` (install kubectl 1.27 or later)',
    );
  return undefined;
}

/** `kubectl kustomize <dir>`, parsed; throws with kubectl's own message when it cannot render. */
export function render(dir: string): K8sObject[] {
  const run = spawnSync('kubectl', ['kustomize', path.resolve(ROOT, dir)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${run.stderr.trim()}`);
  return parseAllDocuments(run.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

// ---------------------------------------------------------------- schema

const MODELS: Record<string, Record<string, unknown>> = {
  v1: core,
  'apps/v1': apps,
  'autoscaling/v2': autoscaling,
  'networking.k8s.io/v1': networking,
  'policy/v1': policy,
  'monitoring.coreos.com/v1': monitoring,
};

/** Every object against its kind's schema (kubernetes-models; the Prometheus operator's for its kinds). */
export function schemaProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const Model = MODELS[o.apiVersion]?.[o.kind] as (new (data: unknown) => { validate(): void }) | undefined;
    if (!Model) {
      problems.push(`${id(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new Model(o).validate();
    } catch (err) {
      problems.push(`${id(o)}: ${(err as Error).message}`);
    }
  }
  return problems;
}

// ---------------------------------------------------------------- typed check (unknown fields)

const TYPES: Record<string, { from: string; type: string }> = {
  'v1/Namespace': { from: 'kubernetes-types/core/v1.js', type: 'Namespace' },
  'v1/ConfigMap': { from: 'kubernetes-types/core/v1.js', type: 'ConfigMap' },
  'v1/Service': { from: 'kubernetes-types/core/v1.js', type: 'Service' },
  'apps/v1/Deployment': { from: 'kubernetes-types/apps/v1.js', type: 'Deployment' },
  'apps/v1/StatefulSet': { from: 'kubernetes-types/apps/v1.js', type: 'StatefulSet' },
  'autoscaling/v2/HorizontalPodAutoscaler': {
    from: 'kubernetes-types/autoscaling/v2.js',
    type: 'HorizontalPodAutoscaler',
  },
  'networking.k8s.io/v1/NetworkPolicy': { from: 'kubernetes-types/networking/v1.js', type: 'NetworkPolicy' },
  'policy/v1/PodDisruptionBudget': { from: 'kubernetes-types/policy/v1.js', type: 'PodDisruptionBudget' },
  'monitoring.coreos.com/v1/ServiceMonitor': {
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
    type: 'IServiceMonitor',
  },
  'monitoring.coreos.com/v1/PrometheusRule': {
    from: '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule',
    type: 'IPrometheusRule',
  },
};

/**
 * The schema check lets fields it does not know through (a misspelled
 * `readinesProbe` is valid to it, and the API server would drop it with a
 * warning at best). Here every object is a literal `satisfies` its type
 * (kubernetes-types; the Prometheus operator's models for its kinds), so
 * TypeScript's excess-property check names any field the type does not have.
 */
export function typeProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const file = path.join(ROOT, 'test', '__k8s_typed_check__.ts');
  const imports = new Map<string, Set<string>>();
  const starts: { line: number; object: K8sObject }[] = [];
  let body = '';
  let line = 0;
  objects.forEach((o, i) => {
    const t = TYPES[`${o.apiVersion}/${o.kind}`];
    if (!t) {
      problems.push(`${id(o)}: no type for ${o.apiVersion} ${o.kind}`);
      return;
    }
    (imports.get(t.from) ?? imports.set(t.from, new Set()).get(t.from)!).add(t.type);
    const text = `export const o${i} = ${JSON.stringify(o, null, 1)} satisfies ${t.type};\n`;
    starts.push({ line, object: o });
    body += text;
    line += text.split('\n').length - 1;
  });
  const head = [...imports]
    .map(([from, names]) => `import type { ${[...names].join(', ')} } from '${from}';\n`)
    .join('');
  const source = head + body;
  const offset = head.split('\n').length - 1;
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest);
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
    if (d.file?.fileName !== file || d.start === undefined) {
      problems.push(`typed check: ${message}`);
      continue;
    }
    const at = d.file.getLineAndCharacterOfPosition(d.start).line - offset;
    const owner = [...starts].reverse().find((s) => s.line <= at);
    problems.push(`${owner ? id(owner.object) : 'typed check'}: ${message}`);
  }
  return problems;
}

// ---------------------------------------------------------------- selection

const of = <T>(objects: K8sObject[], kind: string) =>
  objects.filter((o) => o.kind === kind) as unknown as (T & K8sObject)[];
type Workload = (Deployment | StatefulSet) & K8sObject;
const workloads = (objects: K8sObject[]) => [
  ...of<Deployment>(objects, 'Deployment'),
  ...of<StatefulSet>(objects, 'StatefulSet'),
];
const podOf = (w: Workload) => w.spec!.template as PodTemplateSpec;

export function matches(selector: LabelSelector | undefined, labels: Record<string, string> = {}): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels;
    const value = labels[e.key];
    if (e.operator === 'In' && !(has && e.values!.includes(value!))) return false;
    if (e.operator === 'NotIn' && has && e.values!.includes(value!)) return false;
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
  }
  return true;
}
const selectMap = (s: Record<string, string> | undefined) => (s ? { matchLabels: s } : undefined);

// ---------------------------------------------------------------- environment

/** What each Secret key holds, so a configuration can be loaded without the Secret. */
const { privateKey: STAND_IN_PRIVATE, publicKey: STAND_IN_PUBLIC } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
function standIn(key: string): string | undefined {
  if (/(^|_)DATABASE_URL$/.test(key)) return 'postgres://toko:stand-in@postgres.example:5432/toko';
  if (/_MONGODB_URL$/.test(key)) return 'mongodb://mongo.example:27017/toko';
  if (key === 'REDIS_URL') return 'redis://redis.example:6379';
  if (key === 'JWT_PRIVATE_KEY') return STAND_IN_PRIVATE;
  if (key === 'JWT_PUBLIC_KEY' || key === 'JWT_EXTRA_PUBLIC_KEYS') return STAND_IN_PUBLIC;
  if (['SERVICE_KEY', 'ADMIN_PASSWORD', 'POSTGRES_PASSWORD'].includes(key)) return 'a-stand-in-secret-of-enough-length';
  return undefined;
}

/**
 * A container's environment as the kubelet would give it: ConfigMaps named
 * in envFrom, literal values, and Secret keys (a stand-in each); `secrets`
 * lists the variables that come from the Secret.
 */
export function environmentOf(objects: K8sObject[], c: Container) {
  const problems: string[] = [];
  const env: Record<string, string> = {};
  const secrets = new Map<string, string>();
  const configMaps = of<ConfigMap>(objects, 'ConfigMap');
  for (const from of c.envFrom ?? []) {
    const name = from.configMapRef?.name;
    const cm = configMaps.find((m) => m.metadata.name === name);
    if (!cm) problems.push(`envFrom names ConfigMap ${name ?? '?'}, which the manifests do not hold`);
    else Object.assign(env, cm.data);
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      secrets.set(e.name, ref.key);
      const v = standIn(ref.key);
      if (v === undefined) problems.push(`${e.name}: no stand-in for Secret key ${ref.key} (what does it hold?)`);
      else if (!ref.optional) env[e.name] = v;
    }
  }
  return { env, secrets, problems };
}

// ---------------------------------------------------------------- policy

/** Variable names that hold secrets; and values that look like one. */
const SECRET_NAME = /(^|_)(PASSWORD|SECRET|TOKEN)$|_KEY$|_KEYS$|(^|_)(DATABASE|MONGODB|REDIS|SMTP)_URL$/;
const SECRET_VALUE = /-----BEGIN [A-Z ]*KEY-----|:\/\/[^/\s:@]+:[^/\s@]+@/;

const seconds = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v) / 1000);

/**
 * Probes, resources, the stop sequence, rollout, security context, a PDB and
 * an HPA for every Deployment; selectors that match, Service and
 * ServiceMonitor ports that exist, no `:latest`, no secret in a ConfigMap or
 * a literal value.
 */
export function policyProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const p = (o: K8sObject, what: string) => problems.push(`${id(o)}: ${what}`);
  const pdbs = of<PodDisruptionBudget>(objects, 'PodDisruptionBudget');
  const hpas = of<HorizontalPodAutoscaler>(objects, 'HorizontalPodAutoscaler');

  for (const w of workloads(objects)) {
    const pod = podOf(w);
    const labels = pod.metadata?.labels ?? {};
    if (!matches(w.spec!.selector, labels)) p(w, 'its selector does not match its pod template labels');
    const spec = pod.spec!;
    if (spec.securityContext?.runAsNonRoot !== true) p(w, 'pods may run as root (securityContext.runAsNonRoot)');
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const where = `container ${c.name}`;
      const r = c.resources;
      for (const kind of ['requests', 'limits'] as const)
        for (const res of ['cpu', 'memory']) if (!r?.[kind]?.[res]) p(w, `${where} has no ${res} ${kind.slice(0, -1)}`);
      const image = c.image ?? '';
      if (!/[:@][^/:]+$/.test(image) || /:latest$/.test(image))
        p(w, `${where} runs ${image}: no :latest, a tag or digest`);
      if (c.securityContext?.readOnlyRootFilesystem !== true) p(w, `${where} has a writable root filesystem`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) p(w, `${where} may escalate privileges`);
      for (const e of c.env ?? [])
        if (e.value !== undefined && (SECRET_NAME.test(e.name) || SECRET_VALUE.test(e.value)))
          p(w, `${where} has ${e.name} as a literal value: secrets come from the Secret`);
    }
    for (const c of spec.containers) {
      const where = `container ${c.name}`;
      for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const)
        if (!c[probe]) p(w, `${where} has no ${probe}`);
      if (c.livenessProbe?.httpGet?.path === '/health/ready')
        p(w, `${where}'s liveness probe checks dependencies (/health/ready): an outage would restart every pod`);
      if (labels['app.kubernetes.io/component'] === 'service') {
        if (c.readinessProbe?.httpGet?.path !== '/health/ready')
          p(w, `${where}'s readiness probe is not /health/ready`);
        if (c.livenessProbe?.httpGet?.path !== '/health') p(w, `${where}'s liveness probe is not /health`);
      }
    }
    if (w.kind !== 'Deployment') continue;
    const d = w as Deployment & K8sObject;
    const strategy = d.spec!.strategy;
    if (strategy?.type !== 'RollingUpdate' || strategy.rollingUpdate?.maxUnavailable !== 0)
      p(w, 'rolls out with pods unavailable: RollingUpdate with maxUnavailable 0');
    const grace = spec.terminationGracePeriodSeconds ?? 30;
    for (const c of spec.containers) {
      const sleep = c.lifecycle?.preStop?.exec?.command;
      const preStop = sleep?.[0] === 'sleep' ? Number(sleep[1]) : (c.lifecycle?.preStop?.sleep?.seconds ?? undefined);
      if (preStop === undefined) {
        p(w, `container ${c.name} has no preStop delay`);
        continue;
      }
      const { env } = environmentOf(objects, c);
      if (labels['app.kubernetes.io/component'] === 'service')
        for (const v of ['DRAIN_DELAY_MS', 'SHUTDOWN_TIMEOUT_MS'])
          if (env[v] === undefined)
            p(w, `container ${c.name} leaves ${v} to its default: the grace period cannot be checked against it`);
      const stop = preStop + seconds(env.DRAIN_DELAY_MS, 0) + seconds(env.SHUTDOWN_TIMEOUT_MS, 0);
      if (grace <= stop)
        p(
          w,
          `terminationGracePeriodSeconds ${grace} does not exceed the preStop delay, drain and shutdown (${stop} s)`,
        );
    }
    const hpa = hpas.find(
      (h) =>
        h.apiVersion === 'autoscaling/v2' &&
        h.spec?.scaleTargetRef.kind === 'Deployment' &&
        h.spec.scaleTargetRef.name === d.metadata.name,
    );
    if (!hpa) p(w, 'has no autoscaling/v2 HorizontalPodAutoscaler');
    else if (d.spec!.replicas !== undefined)
      p(
        w,
        'sets spec.replicas beside its autoscaler: every `kubectl apply` would reset the count the autoscaler chose',
      );
    // What runs at least: the autoscaler's lower bound (it raises the count to it, metrics or not).
    const replicas = hpa?.spec?.minReplicas ?? d.spec!.replicas ?? 1;
    if (replicas > 1 && !pdbs.some((b) => matches(b.spec?.selector, labels)))
      p(w, `runs ${replicas} replicas and no PodDisruptionBudget selects its pods`);
  }

  for (const b of pdbs)
    if (!workloads(objects).some((w) => matches(b.spec?.selector, podOf(w).metadata?.labels))) p(b, 'selects no pods');

  const services = of<Service>(objects, 'Service');
  for (const s of services) {
    const targets = workloads(objects).filter((w) => matches(selectMap(s.spec?.selector), podOf(w).metadata?.labels));
    if (targets.length !== 1) {
      p(s, `selects the pods of ${targets.length} workloads`);
      continue;
    }
    const ports = podOf(targets[0]!).spec!.containers.flatMap((c) => c.ports ?? []);
    for (const port of s.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      if (!ports.some((cp) => cp.name === target || cp.containerPort === target))
        p(s, `port ${port.name ?? port.port} targets ${target}, which no container of ${id(targets[0]!)} opens`);
    }
  }
  for (const m of of<IServiceMonitor>(objects, 'ServiceMonitor')) {
    const selected = services.filter((s) => matches(m.spec.selector, s.metadata.labels));
    if (selected.length !== 1) p(m, `selects ${selected.length} Services`);
    for (const e of m.spec.endpoints)
      for (const s of selected)
        if (!s.spec?.ports?.some((sp) => sp.name === e.port))
          p(m, `scrapes port ${e.port ?? '?'}, which ${id(s)} has not`);
  }
  for (const cm of of<ConfigMap>(objects, 'ConfigMap'))
    for (const [k, v] of Object.entries(cm.data ?? {}))
      if (SECRET_NAME.test(k) || SECRET_VALUE.test(v)) p(cm, `holds ${k}, a secret: secrets go in the Secret`);
  return problems;
}

// ---------------------------------------------------------------- topology

/** Named by the replicas work (draining), which src/config.ts does not read yet. */
const PENDING_VARIABLES: string[] = [];

const hostOfUrl = (url: string) => new URL(url).hostname;

/**
 * The compose check, applied to the manifests: every variable is one the
 * configuration knows and the configuration loads; every module is hosted
 * once, on a database server; every `<M>_SERVICE_URL` names the Service of
 * the Deployment hosting M; replicas share state (Redis) and keys; the init
 * container migrates with the server's configuration; the gateway routes
 * each module to the Service hosting it.
 */
export function topologyProblems(objects: K8sObject[]): string[] {
  const problems: string[] = [];
  const toko = of<Deployment>(objects, 'Deployment').filter(
    (d) => podOf(d).metadata?.labels?.['app.kubernetes.io/component'] === 'service',
  );
  const services = of<Service>(objects, 'Service');
  const configs = new Map<string, { config: Config; secrets: Map<string, string> }>();
  for (const d of toko) {
    const pod = podOf(d).spec!;
    const main = pod.containers.find((c) => c.name === 'toko') ?? pod.containers[0]!;
    const { env, secrets, problems: envProblems } = environmentOf(objects, main);
    for (const e of envProblems) problems.push(`${id(d)}: ${e}`);
    for (const name of Object.keys(env))
      if (!ENV_VARIABLES.includes(name) && !PENDING_VARIABLES.includes(name))
        problems.push(`${id(d)}: sets ${name}, which the configuration does not read`);
    for (const init of pod.initContainers ?? []) {
      const same = (a: EnvVar[] | undefined, b: EnvVar[] | undefined) => JSON.stringify(a) === JSON.stringify(b);
      if (!same(init.env, main.env) || JSON.stringify(init.envFrom) !== JSON.stringify(main.envFrom))
        problems.push(`${id(d)}: init container ${init.name} does not see the server's configuration`);
    }
    try {
      configs.set(d.metadata.name, { config: loadConfig(env), secrets });
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(`${id(d)}: ${err.message}`);
    }
  }
  const hostedBy = (m: ModuleName) => [...configs].filter(([, c]) => c.config.modules.includes(m)).map(([n]) => n);
  for (const m of MODULE_NAMES) {
    const hosts = hostedBy(m);
    if (hosts.length !== 1) problems.push(`${m} is hosted by ${hosts.length} Deployments (${hosts.join(', ')})`);
  }
  /** The Deployment whose pods a Service (by its DNS name in this namespace) sends to. */
  const deploymentBehind = (serviceName: string) => {
    const s = services.find((x) => x.metadata.name === serviceName);
    return toko.find((d) => matches(selectMap(s?.spec?.selector), podOf(d).metadata?.labels))?.metadata.name;
  };
  for (const d of toko) {
    const entry = configs.get(d.metadata.name);
    if (!entry) continue;
    const { config: c, secrets } = entry;
    for (const m of c.modules) {
      if (!c.mongoUrls[m] && !c.databaseUrls[m])
        problems.push(`${id(d)}: ${m} has no database URL, so it would keep its data in the pod (embedded)`);
      const needs = new Set<ModuleName>([
        ...(MODULE_DEFINITIONS[m].requires as ModuleName[]),
        ...(m === TOKEN_ISSUER ? [] : [TOKEN_ISSUER]),
      ]);
      for (const r of needs) {
        if (c.modules.includes(r)) continue;
        const url = c.serviceUrls[r];
        const variable = `${r.toUpperCase()}_SERVICE_URL`;
        if (!url) {
          problems.push(`${id(d)}: ${m} needs ${r}: ${variable} is not set`);
          continue;
        }
        const behind = deploymentBehind(hostOfUrl(url));
        if (!behind || !hostedBy(r).includes(behind))
          problems.push(
            `${id(d)}: ${variable} ${url} does not reach the Deployment hosting ${r} (${hostedBy(r).join(', ')})`,
          );
      }
    }
    for (const [m, url] of Object.entries(c.serviceUrls)) {
      const behind = deploymentBehind(hostOfUrl(url));
      if (!behind || !hostedBy(m as ModuleName).includes(behind))
        problems.push(`${id(d)}: ${m.toUpperCase()}_SERVICE_URL ${url} does not reach the Deployment hosting ${m}`);
    }
    if (Object.keys(c.serviceUrls).length > 0 && !c.serviceKey)
      problems.push(`${id(d)}: calls other services without SERVICE_KEY`);
    if (!c.redisUrl) problems.push(`${id(d)}: no REDIS_URL: replicas and services share events and throttles there`);
    if (c.modules.includes(TOKEN_ISSUER) && !(secrets.has('JWT_PRIVATE_KEY') && secrets.has('JWT_PUBLIC_KEY')))
      problems.push(
        `${id(d)}: its replicas would each make a signing key: JWT_PRIVATE_KEY and JWT_PUBLIC_KEY from the Secret`,
      );
  }
  // The gateway: each module's upstream is the Service of the Deployment that hosts it.
  const gatewayConf = of<ConfigMap>(objects, 'ConfigMap').find((cm) =>
    cm.data?.['default.conf']?.includes('upstream toko_'),
  );
  if (!gatewayConf) problems.push('no ConfigMap holds the gateway config');
  for (const m of MODULE_NAMES) {
    const server = new RegExp(`upstream toko_${m} \\{ (?:zone \\S+ \\S+; )?server ([^:;\\s]+):(\\d+)[^;]*;`).exec(
      gatewayConf?.data?.['default.conf'] ?? '',
    );
    const behind = server ? deploymentBehind(server[1]!) : undefined;
    if (!behind || !hostedBy(m).includes(behind))
      problems.push(
        `the gateway sends ${m} to ${server?.[1] ?? 'nowhere'}, not the Service of the Deployment hosting ${m}`,
      );
    // A Service is one address, and nginx retries only on another entry of the upstream: the Service once per
    // try, every entry that Service, none counted down (one failing pod would take the whole Service off the
    // gateway), none held back.
    const text = gatewayConf?.data?.['default.conf'] ?? '';
    const tries = Number(/^\s*proxy_next_upstream_tries (\d+);/m.exec(text)?.[1] ?? NaN);
    const entries = [
      ...(new RegExp(`upstream toko_${m} \\{([^}]*)\\}`).exec(text)?.[1] ?? '').matchAll(/server ([^;]*);/g),
    ].map((e) => e[1]!);
    if (entries.length < tries)
      problems.push(
        `the gateway lists ${m}'s Service ${entries.length} time(s), fewer than its ${tries} tries: a request a gone pod dropped is never asked again`,
      );
    if (entries.some((e) => !/ max_fails=0\b/.test(e)))
      problems.push(`the gateway counts ${m}'s failures: one failing pod would take its whole Service off the gateway`);
    for (const e of entries.filter(
      (x) => x.split(/\s+/)[0] !== entries[0]?.split(/\s+/)[0] || / (down|backup)\b/.test(x),
    ))
      problems.push(
        `the gateway's upstream for ${m} has an entry that is not its Service, or is held back: server ${e}`,
      );
  }
  if (gatewayConf && !/^\s*proxy_next_upstream_tries \d+;/m.test(gatewayConf.data?.['default.conf'] ?? ''))
    problems.push('the gateway sets no proxy_next_upstream_tries: a request would be tried on every entry, unbounded');
  // Redis of the cluster's own (dev): events wait there, so kept on disk and never evicted.
  for (const s of of<StatefulSet>(objects, 'StatefulSet').filter(
    (x) => podOf(x).metadata?.labels?.['app.kubernetes.io/component'] === 'redis',
  )) {
    const c = podOf(s).spec!.containers[0]!;
    const args = [...(c.command ?? []), ...(c.args ?? [])].join(' ');
    if (!/--appendonly yes\b/.test(args)) problems.push(`${id(s)}: Redis without an append-only file`);
    if (!/--maxmemory-policy noeviction\b/.test(args)) problems.push(`${id(s)}: Redis may evict events`);
    const data = c.volumeMounts?.find((v) => v.mountPath === '/data');
    if (!data || !s.spec?.volumeClaimTemplates?.some((t) => t.metadata?.name === data.name))
      problems.push(`${id(s)}: Redis data not on a volume claim`);
  }
  return problems;
}

// ---------------------------------------------------------------- network policy

export interface Endpoint {
  namespace: string;
  labels: Record<string, string>;
}
/** A pod of a workload in the rendered objects, as a network endpoint. */
export function podEndpoint(objects: K8sObject[], workload: string): Endpoint & { ports: Map<string, number> } {
  const w = workloads(objects).find((x) => x.metadata.name === workload);
  if (!w) throw new Error(`no workload ${workload}`);
  const ports = new Map(
    podOf(w)
      .spec!.containers.flatMap((c) => c.ports ?? [])
      .map((p) => [p.name ?? String(p.containerPort), p.containerPort]),
  );
  return { namespace: w.metadata.namespace ?? 'default', labels: podOf(w).metadata?.labels ?? {}, ports };
}

const nsLabels = (ns: string) => ({ 'kubernetes.io/metadata.name': ns });

function peerMatches(peer: NetworkPolicyPeer, policyNs: string, other: Endpoint | 'outside'): boolean {
  if (other === 'outside') return peer.ipBlock !== undefined;
  if (peer.ipBlock) return false; // how a CNI treats pod addresses in an ipBlock varies: count on none
  const nsOk = peer.namespaceSelector
    ? matches(peer.namespaceSelector, nsLabels(other.namespace))
    : other.namespace === policyNs;
  const podOk = peer.podSelector ? matches(peer.podSelector, other.labels) : true;
  return nsOk && podOk;
}
function portMatches(ports: NetworkPolicyPort[] | undefined, port: number, named: Map<string, number>): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some(
    (p) =>
      (p.protocol ?? 'TCP') === 'TCP' &&
      (p.port === undefined || p.port === port || (typeof p.port === 'string' && named.get(p.port) === port)),
  );
}

/**
 * Whether NetworkPolicy lets `from` open a TCP connection to `to` on
 * `port`: the source's egress and the destination's ingress must both allow
 * it (a side no policy selects for that direction allows everything).
 * 'outside' is an address beyond the cluster.
 */
export function allowed(
  objects: K8sObject[],
  from: Endpoint | 'outside',
  to: (Endpoint & { ports?: Map<string, number> }) | 'outside',
  port: number,
): boolean {
  const policies = of<NetworkPolicy>(objects, 'NetworkPolicy');
  const selecting = (e: Endpoint, type: 'Ingress' | 'Egress') =>
    policies.filter(
      (np) =>
        (np.metadata.namespace ?? 'default') === e.namespace &&
        matches(np.spec!.podSelector, e.labels) &&
        (np.spec!.policyTypes ?? ['Ingress']).includes(type),
    );
  const toPorts = to === 'outside' ? new Map<string, number>() : (to.ports ?? new Map());
  if (from !== 'outside') {
    const egress = selecting(from, 'Egress');
    if (
      egress.length > 0 &&
      !egress.some((np) =>
        (np.spec!.egress ?? []).some(
          (r) =>
            (!r.to ||
              r.to.length === 0 ||
              r.to.some((peer) => peerMatches(peer, np.metadata.namespace ?? 'default', to))) &&
            portMatches(r.ports, port, toPorts),
        ),
      )
    )
      return false;
  }
  if (to === 'outside') return true;
  const ingress = selecting(to, 'Ingress');
  return (
    ingress.length === 0 ||
    ingress.some((np) =>
      (np.spec!.ingress ?? []).some(
        (r) =>
          (!r.from ||
            r.from.length === 0 ||
            r.from.some((peer) => peerMatches(peer, np.metadata.namespace ?? 'default', from))) &&
          portMatches(r.ports, port, toPorts),
      ),
    )
  );
}
