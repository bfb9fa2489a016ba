import type { Deployment, StatefulSet } from 'kubernetes-types/apps/v1.js';
import type { HorizontalPodAutoscaler } from 'kubernetes-types/autoscaling/v2.js';
import type {
  Container,
  EnvVar,
  PodSecurityContext,
  Probe,
  SecurityContext,
  Service,
  Volume,
  VolumeMount,
} from 'kubernetes-types/core/v1.js';
import type { PodDisruptionBudget } from 'kubernetes-types/policy/v1.js';
import type { IServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { FIGURES, STORE_RESOURCES, type Figure } from './figures.ts';

/** The Secret every toko process reads its secrets from; never part of the manifests (docs/kubernetes.md says how to make it). */
export const SECRET = 'toko-secrets';
/** The ConfigMap of settings every toko process shares (base/common.env). */
export const COMMON_CONFIG = 'toko-common';
export const HTTP_PORT = 3000;
export const METRICS_PORT = 9464;
export const GATEWAY_PORT = 8080;

/**
 * Stopping a pod, in order: the preStop sleep (endpoints and the gateway's
 * upstreams stop sending while it runs), then SIGTERM: /health/ready answers
 * 503 for DRAIN_DELAY_MS, the listener closes, in-flight requests and jobs
 * get SHUTDOWN_TIMEOUT_MS. The grace period covers all three with room to spare.
 */
export const STOP = { preStopSeconds: 5, drainDelayMs: 5000, shutdownTimeoutMs: 10_000, graceSeconds: 30 };
/** nginx stops gracefully (the image's stop signal is SIGQUIT): it waits for in-flight requests, at most proxy_read_timeout (30 s). */
export const GATEWAY_STOP = { preStopSeconds: 5, graceSeconds: 40 };

export type Component = 'service' | 'gateway' | 'postgres' | 'redis';

export const labelsOf = (instance: string, component: Component) => ({
  'app.kubernetes.io/name': component === 'service' ? 'toko' : `toko-${component}`,
  'app.kubernetes.io/instance': instance,
  'app.kubernetes.io/component': component,
  'app.kubernetes.io/part-of': 'toko',
});
export const selectorOf = (instance: string) => ({ 'app.kubernetes.io/instance': instance });

const httpProbe = (path: string, port: string, o: Partial<Probe>): Probe => ({
  httpGet: { path, port },
  timeoutSeconds: 3,
  ...o,
});

const restricted = (user: number): PodSecurityContext => ({
  runAsNonRoot: true,
  runAsUser: user,
  runAsGroup: user,
  fsGroup: user,
  seccompProfile: { type: 'RuntimeDefault' },
});
const lockedDown: SecurityContext = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};
const scratch = (mounts: Record<string, string>): { volumes: Volume[]; mounts: VolumeMount[] } => ({
  volumes: Object.keys(mounts).map((name) => ({ name, emptyDir: {} })),
  mounts: Object.entries(mounts).map(([name, mountPath]) => ({ name, mountPath })),
});

const secretRef = (name: string, key = name, optional = false): EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: SECRET, key, ...(optional ? { optional: true } : {}) } },
});

/** A secret variable: read from key `key` of the Secret (`name` itself unless told), optional only when said so. */
export interface SecretVariable {
  name: string;
  key?: string;
  optional?: boolean;
}

export interface TokoWorkload {
  /** The Deployment, its Service and everything of theirs: `toko` or `toko-<service>`. */
  name: string;
  /** The ConfigMap of this Deployment's own settings (MODULES, where the others are, module settings). */
  configMap: string;
  secrets: SecretVariable[];
  image: string;
  figure: Figure;
}

/** The server container: its ports, the three probes and the preStop delay, on top of what the migrate step shares. */
const serverContainer = (base: Container): Container => ({
  ...base,
  ports: [
    { name: 'http', containerPort: HTTP_PORT },
    { name: 'metrics', containerPort: METRICS_PORT },
  ],
  // Up to 60 s for the first answer (the bench's cold start on PostgreSQL: 2.0 s).
  startupProbe: httpProbe('/health', 'http', { periodSeconds: 2, failureThreshold: 30 }),
  // Out of the Service while a dependency it owns is down, or while it drains.
  readinessProbe: httpProbe('/health/ready', 'http', { periodSeconds: 5, failureThreshold: 2 }),
  // The process itself answers: /health never checks a dependency, so a database outage restarts nothing.
  livenessProbe: httpProbe('/health', 'http', { periodSeconds: 10, failureThreshold: 3 }),
  lifecycle: { preStop: { exec: { command: ['sleep', String(STOP.preStopSeconds)] } } },
});

/**
 * A toko Deployment: its migrations run first in an init container (every
 * pod runs it; the advisory lock lets one apply and the rest find nothing to
 * do), then the server, with the three probes, the stop sequence above,
 * nothing writable but two scratch directories, and every secret from the Secret.
 */
export function tokoDeployment(w: TokoWorkload): Deployment {
  const labels = labelsOf(w.name, 'service');
  const { volumes, mounts } = scratch({ tmp: '/tmp', data: '/data' });
  const base: Container = {
    name: 'toko',
    image: w.image,
    imagePullPolicy: 'IfNotPresent',
    envFrom: [{ configMapRef: { name: COMMON_CONFIG } }, { configMapRef: { name: w.configMap } }],
    env: w.secrets.map((s) => secretRef(s.name, s.key, s.optional)),
    resources: w.figure.resources,
    securityContext: lockedDown,
    volumeMounts: mounts,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: w.name, labels },
    // No spec.replicas: the autoscaler holds the count (from its minReplicas up), and `kubectl apply` must not reset it.
    spec: {
      revisionHistoryLimit: 5,
      selector: { matchLabels: selectorOf(w.name) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          // No TOKO_USER_PORT-style variables: every address comes from the ConfigMap.
          enableServiceLinks: false,
          terminationGracePeriodSeconds: STOP.graceSeconds,
          securityContext: restricted(1000), // the image's `node` user
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selectorOf(w.name) },
            },
          ],
          initContainers: [{ ...base, name: 'migrate', command: ['node', 'dist/src/migrate.js'] }],
          containers: [serverContainer(base)],
          volumes,
        },
      },
    },
  };
}

export function tokoService(name: string): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, labels: labelsOf(name, 'service') },
    spec: {
      selector: selectorOf(name),
      ports: [
        { name: 'http', port: HTTP_PORT, targetPort: 'http' },
        { name: 'metrics', port: METRICS_PORT, targetPort: 'metrics' },
      ],
    },
  };
}

/** At most one pod of it down by choice (a node drain): with two or more replicas one keeps serving; with one, a drain is not blocked. */
export function disruptionBudget(name: string, component: Component): PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, labels: labelsOf(name, component) },
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorOf(name) } },
  };
}

export function autoscaler(name: string, component: Component, min: number, max: number): HorizontalPodAutoscaler {
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: { name, labels: labelsOf(name, component) },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
      minReplicas: min,
      maxReplicas: max,
      metrics: [
        { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      ],
    },
  };
}

export function serviceMonitor(name: string): IServiceMonitor {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: { name, labels: labelsOf(name, 'service') },
    spec: {
      selector: { matchLabels: selectorOf(name) },
      endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }],
    },
  };
}

export const GATEWAY = 'toko-gateway';
export const GATEWAY_CONFIG = 'toko-gateway-nginx';
const NGINX_IMAGE = 'nginxinc/nginx-unprivileged:1.27-alpine';

/**
 * The nginx gateway, serving the config `npm run generate` writes from the
 * registry (each overlay's gateway.conf, its upstreams that overlay's
 * Services). Ready when nginx answers: not on the services' readiness, or
 * one service down would take every route off the gateway with it.
 */
export function gatewayDeployment(): Deployment {
  const labels = labelsOf(GATEWAY, 'gateway');
  const { volumes, mounts } = scratch({ tmp: '/tmp' });
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: GATEWAY, labels },
    // No spec.replicas: the autoscaler holds the count (from its minReplicas, 2, up).
    spec: {
      revisionHistoryLimit: 5,
      selector: { matchLabels: selectorOf(GATEWAY) },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: GATEWAY_STOP.graceSeconds,
          securityContext: restricted(101), // the image's `nginx` user
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: 'kubernetes.io/hostname',
              whenUnsatisfiable: 'ScheduleAnyway',
              labelSelector: { matchLabels: selectorOf(GATEWAY) },
            },
          ],
          containers: [
            {
              name: 'nginx',
              image: NGINX_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              ports: [{ name: 'http', containerPort: GATEWAY_PORT }],
              startupProbe: httpProbe('/health', 'http', { periodSeconds: 2, failureThreshold: 15 }),
              readinessProbe: httpProbe('/health', 'http', { periodSeconds: 5, failureThreshold: 2 }),
              livenessProbe: httpProbe('/health', 'http', { periodSeconds: 10, failureThreshold: 3 }),
              lifecycle: { preStop: { exec: { command: ['sleep', String(GATEWAY_STOP.preStopSeconds)] } } },
              resources: FIGURES.gateway.resources,
              securityContext: lockedDown,
              volumeMounts: [{ name: 'conf', mountPath: '/etc/nginx/conf.d', readOnly: true }, ...mounts],
            },
          ],
          volumes: [
            {
              name: 'conf',
              configMap: { name: GATEWAY_CONFIG, items: [{ key: 'default.conf', path: 'default.conf' }] },
            },
            ...volumes,
          ],
        },
      },
    },
  };
}

export function gatewayService(): Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: GATEWAY, labels: labelsOf(GATEWAY, 'gateway') },
    spec: { selector: selectorOf(GATEWAY), ports: [{ name: 'http', port: 80, targetPort: 'http' }] },
  };
}

/** The dev overlay's PostgreSQL: one database, a schema per module, its password from the Secret. */
export function devPostgres(): [StatefulSet, Service] {
  const name = 'toko-postgres';
  const labels = labelsOf(name, 'postgres');
  const { volumes, mounts } = scratch({ run: '/var/run/postgresql', tmp: '/tmp' });
  const ready: Probe = { exec: { command: ['pg_isready', '-U', 'toko', '-d', 'toko'] }, timeoutSeconds: 3 };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, labels },
      spec: {
        serviceName: name,
        replicas: 1,
        selector: { matchLabels: selectorOf(name) },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restricted(70), // postgres in the alpine image
            containers: [
              {
                name: 'postgres',
                image: 'postgres:16-alpine',
                imagePullPolicy: 'IfNotPresent',
                ports: [{ name: 'postgres', containerPort: 5432 }],
                env: [
                  { name: 'POSTGRES_USER', value: 'toko' },
                  { name: 'POSTGRES_DB', value: 'toko' },
                  { name: 'PGDATA', value: '/var/lib/postgresql/data/pgdata' },
                  secretRef('POSTGRES_PASSWORD'),
                ],
                startupProbe: { ...ready, periodSeconds: 2, failureThreshold: 60 },
                readinessProbe: { ...ready, periodSeconds: 5 },
                livenessProbe: { ...ready, periodSeconds: 10, failureThreshold: 6 },
                resources: STORE_RESOURCES,
                securityContext: lockedDown,
                volumeMounts: [{ name: 'data', mountPath: '/var/lib/postgresql/data' }, ...mounts],
              },
            ],
            volumes,
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels },
      spec: { selector: selectorOf(name), ports: [{ name: 'postgres', port: 5432, targetPort: 'postgres' }] },
    },
  ];
}

/** The dev overlay's Redis: events wait here on their way, so an append-only file on a volume and never an eviction. */
export function devRedis(): [StatefulSet, Service] {
  const name = 'toko-redis';
  const labels = labelsOf(name, 'redis');
  const ping: Probe = { exec: { command: ['redis-cli', 'ping'] }, timeoutSeconds: 3 };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'StatefulSet',
      metadata: { name, labels },
      spec: {
        serviceName: name,
        replicas: 1,
        selector: { matchLabels: selectorOf(name) },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            enableServiceLinks: false,
            securityContext: restricted(999), // redis in the alpine image
            containers: [
              {
                name: 'redis',
                image: 'redis:7-alpine',
                imagePullPolicy: 'IfNotPresent',
                args: ['--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--dir', '/data'],
                ports: [{ name: 'redis', containerPort: 6379 }],
                startupProbe: { ...ping, periodSeconds: 2, failureThreshold: 30 },
                readinessProbe: { ...ping, periodSeconds: 5 },
                livenessProbe: { ...ping, periodSeconds: 10, failureThreshold: 6 },
                resources: STORE_RESOURCES,
                securityContext: lockedDown,
                volumeMounts: [{ name: 'data', mountPath: '/data' }],
              },
            ],
          },
        },
        volumeClaimTemplates: [
          {
            metadata: { name: 'data' },
            spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
          },
        ],
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, labels },
      spec: { selector: selectorOf(name), ports: [{ name: 'redis', port: 6379, targetPort: 'redis' }] },
    },
  ];
}
