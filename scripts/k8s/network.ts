import type { NetworkPolicy, NetworkPolicyPeer } from 'kubernetes-types/networking/v1.js';
import { GATEWAY_PORT, type Component } from './workloads.ts';

/** Where Prometheus runs: only pods of this namespace may read /metrics. */
export const MONITORING_NAMESPACE = 'monitoring';

const pods = (component: Component) => ({
  matchLabels: { 'app.kubernetes.io/part-of': 'toko', 'app.kubernetes.io/component': component },
});
const policy = (name: string, spec: NetworkPolicy['spec']): NetworkPolicy => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'NetworkPolicy',
  metadata: { name, labels: { 'app.kubernetes.io/part-of': 'toko' } },
  spec,
});
const tcp = (...ports: (number | string)[]) => ports.map((port) => ({ protocol: 'TCP', port }));
/** Anything, in the cluster or outside it (databases may be either; how a CNI treats pod addresses in an ipBlock varies). */
const anywhere: NetworkPolicyPeer[] = [
  { ipBlock: { cidr: '0.0.0.0/0' } },
  { ipBlock: { cidr: '::/0' } },
  { namespaceSelector: {} },
];

/**
 * Deny by default, then exactly the paths toko uses. A NetworkPolicy sees
 * addresses and ports, not paths: the services' port serves both the public
 * routes and /internal, so "only the gateway reaches the public routes" is
 * this policy (only the gateway and toko's own pods reach the port) and
 * "/internal only from toko pods" is the gateway refusing /internal with a
 * 404 plus the SERVICE_KEY every internal call must carry.
 */
export function networkPolicies(): NetworkPolicy[] {
  return [
    policy('toko-default-deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }),
    policy('toko-dns', {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    }),
    // The edge: clients (an Ingress controller, a load balancer) reach the gateway and nothing else.
    policy('toko-gateway', {
      podSelector: pods('gateway'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ ports: tcp(GATEWAY_PORT) }],
      egress: [{ to: [{ podSelector: pods('service') }], ports: tcp('http') }],
    }),
    policy('toko-services', {
      podSelector: pods('service'),
      policyTypes: ['Ingress', 'Egress'],
      ingress: [
        // Public routes through the gateway; contracts (/internal) between services.
        { from: [{ podSelector: pods('gateway') }, { podSelector: pods('service') }], ports: tcp('http') },
        {
          from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': MONITORING_NAMESPACE } } }],
          ports: tcp('metrics'),
        },
      ],
      egress: [
        { to: [{ podSelector: pods('service') }], ports: tcp('http') },
        // PostgreSQL, Redis, MongoDB; SMTP for the notification module; OTLP/HTTP for traces.
        { to: anywhere, ports: tcp(5432, 6379, 27017, 25, 465, 587, 4318) },
      ],
    }),
  ];
}

/** The dev overlay's own stores: reached by toko's services only. */
export function storePolicy(component: 'postgres' | 'redis', port: string): NetworkPolicy {
  return policy(`toko-${component}`, {
    podSelector: pods(component),
    policyTypes: ['Ingress', 'Egress'],
    ingress: [{ from: [{ podSelector: pods('service') }], ports: tcp(port) }],
    egress: [],
  });
}
