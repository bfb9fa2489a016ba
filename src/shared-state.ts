import type { Logger } from 'pino';
import { processSharedState, type SharedState } from '../kit/shared.ts';
import type { Config } from './config.ts';
import type { Closer } from './closer.ts';

/** How long a Redis command of a throttle may take before the in-memory insurance answers instead. */
const COMMAND_TIMEOUT_MS = 250;

/**
 * What the replicas of a service share: with REDIS_URL, throttles counted in
 * Redis and cache drops over Redis pub/sub (the Redis client is loaded only
 * then); without it, both stay in this process, which is all one replica needs.
 */
export async function createSharedState(config: Config, logger: Logger, closer: Closer): Promise<SharedState> {
  if (!config.redisUrl) return processSharedState();
  const { RedisSharedState } = await import('../adapters/redis/shared-state.ts');
  const shared = new RedisSharedState({
    redisUrl: config.redisUrl,
    prefix: config.events.queuePrefix,
    replicas: config.replicas,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    logger,
  });
  closer.add('shared state (redis)', () => shared.close());
  // Bounded: a Redis that is away at start-up leaves the throttles on their insurance until it answers.
  await shared.ready(2000);
  return shared;
}
