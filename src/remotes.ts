import type CircuitBreaker from 'opossum';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config, ModuleName } from './config.ts';
import { MODULE_DEFINITIONS } from './registry.ts';

export interface Remotes {
  /** The HTTP port of a module another process serves (made once), or undefined when no URL is set. */
  port(name: ModuleName): unknown;
  /** One breaker per remote module in use, for readiness and metrics. */
  breakers: Map<ModuleName, CircuitBreaker<[string, unknown], unknown>>;
}

export async function createRemotes(config: Config, logger: Logger): Promise<Remotes> {
  // The HTTP client (undici) and the breakers load only where some module is called over HTTP: a tenth of a second of every start.
  const client = Object.values(config.serviceUrls).some(Boolean)
    ? await import('../adapters/http/contract-client.ts')
    : undefined;
  const ports = new Map<ModuleName, unknown>();
  const breakers = new Map<ModuleName, CircuitBreaker<[string, unknown], unknown>>();
  return {
    breakers,
    port(name) {
      const url = config.serviceUrls[name];
      if (!url || !client) return undefined;
      if (!ports.has(name)) {
        if (!config.serviceKey)
          throw new Error(
            `${name.toUpperCase()}_SERVICE_URL is set, so SERVICE_KEY must be set too (internal calls carry it)`,
          );
        if (!config.redisUrl)
          throw new Error(
            `${name.toUpperCase()}_SERVICE_URL is set, so REDIS_URL must be set too (events between services go over BullMQ)`,
          );
        const tuning = config.remoteTuning[name];
        const remote = client.httpPort(MODULE_DEFINITIONS[name].contract, {
          baseUrl: url,
          serviceKey: config.serviceKey,
          timeoutMs: tuning.timeoutMs,
          retries: tuning.retries,
          retryBaseMs: 100,
          breaker: {
            errorThresholdPercentage: tuning.errorThresholdPercentage,
            volumeThreshold: tuning.volumeThreshold,
            resetTimeoutMs: tuning.resetTimeoutMs,
          },
          logger: logger.child({ remote: name }),
        });
        ports.set(name, remote.port);
        breakers.set(name, remote.breaker);
      }
      return ports.get(name);
    },
  };
}

/**
 * `toko_circuit_breaker_state{remote}` (0 closed, 1 half-open, 2 open) and
 * `toko_circuit_breaker_calls{remote,outcome}` over the breaker's rolling window.
 */
export function registerBreakerMetrics(registry: Registry, breakers: Remotes['breakers']): void {
  new Gauge({
    name: 'toko_circuit_breaker_state',
    help: 'Circuit breaker of each remote module: 0 closed, 1 half-open, 2 open',
    labelNames: ['remote'] as const,
    registers: [registry],
    collect() {
      for (const [remote, b] of breakers) this.set({ remote }, b.opened ? 2 : b.halfOpen ? 1 : 0);
    },
  });
  new Gauge({
    name: 'toko_circuit_breaker_calls',
    help: 'Calls to each remote module in the breaker rolling window, by outcome',
    labelNames: ['remote', 'outcome'] as const,
    registers: [registry],
    collect() {
      for (const [remote, b] of breakers) {
        const s = b.stats;
        for (const [outcome, n] of Object.entries({
          success: s.successes,
          failure: s.failures,
          rejected: s.rejects,
          timeout: s.timeouts,
        })) {
          this.set({ remote, outcome }, n);
        }
      }
    },
  });
}
