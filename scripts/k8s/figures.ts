import type { ResourceRequirements } from 'kubernetes-types/core/v1.js';

/**
 * Where each resource figure comes from. Memory is the footprint bench's
 * (`npm run bench -- footprint`), in bench/results/2026-12-03-footprint.json
 * (README, Performance, "Footprint"); test/k8s-policy.test.ts checks every
 * memory request against the figure it names here. CPU is not measured by
 * that bench: the requests are what an idle process needs to answer its
 * probes promptly, the limits what the reads bench ran on (Node runs the
 * request path on one thread; bcrypt runs on PASSWORD_WORKERS threads).
 */
export const FOOTPRINT_FILE = 'bench/results/2026-12-03-footprint.json';

export interface Figure {
  resources: ResourceRequirements;
  /** The bench's row (`topology`) and what of it the memory request must cover. */
  measured: { topology: 'postgres' | 'split'; what: 'node after load' | 'largest service idle' | 'nginx' };
}

export const FIGURES = {
  /**
   * Every module in one process: the "postgres" row, RSS after load 222 MiB of
   * which npm 56 and sh 2, so the node process ~164 MiB; requested 256 Mi, limit
   * twice that for heap growth under a burst.
   */
  monolith: {
    resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '2', memory: '512Mi' } },
    measured: { topology: 'postgres', what: 'node after load' },
  },
  /**
   * One module per process: the "split" row's service processes, 135–144 MiB
   * each idle (the 204 MiB one is the launcher holding the embedded database,
   * which Kubernetes replaces with a database server), 21 MiB more for the
   * whole split after load; requested 192 Mi, limit twice that.
   */
  service: {
    resources: { requests: { cpu: '250m', memory: '192Mi' }, limits: { cpu: '1', memory: '384Mi' } },
    measured: { topology: 'split', what: 'largest service idle' },
  },
  /** The nginx gateway: the "split" row's two nginx processes, 7 and 5 MiB. */
  gateway: {
    resources: { requests: { cpu: '50m', memory: '32Mi' }, limits: { cpu: '500m', memory: '128Mi' } },
    measured: { topology: 'split', what: 'nginx' },
  },
} satisfies Record<string, Figure>;

/** The dev overlay's own PostgreSQL and Redis: not toko, not benched; enough for a laptop. */
export const STORE_RESOURCES: ResourceRequirements = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '1', memory: '512Mi' },
};
