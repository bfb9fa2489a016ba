import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MODULE_NAMES, type ModuleName } from '../../src/registry.ts';
import { startSplit, type SplitTopology } from '../../src/split/topology.ts';
import { freshDatabase, type TestDatabase } from './app.ts';
import { RedisServer } from './redis-server.ts';
import { freePorts } from './wait.ts';

export interface SplitRig {
  topology: SplitTopology;
  redis: RedisServer;
  url: string;
  /** Each service keeps its files (embedded database, signing keys) under `<dataDir>/<module>`. */
  dataDir: string;
  close(): Promise<void>;
}

/**
 * The four services behind the gateway with a private Redis (persistent:
 * append-only file, fsync on every write — the setting docs/topologies.md asks
 * for — unless told otherwise), an embedded database per service unless
 * TEST_DATABASE_URL names a server, and `env` for every service.
 */
export async function startSplitRig(
  env: Record<string, string>,
  opts: {
    persistentRedis?: boolean;
    /** Processes per service (default one each); a service of several gets a balancer port too. */
    replicas?: Partial<Record<ModuleName, number>>;
    /** The launcher starts again a service process that exits unasked. */
    restart?: boolean;
  } = {},
): Promise<SplitRig> {
  const counts = MODULE_NAMES.map((m) => opts.replicas?.[m] ?? 1);
  const balanced = MODULE_NAMES.filter((_, i) => counts[i]! > 1);
  const [gateway, redisPort, ...free] = await freePorts(2 + counts.reduce((a, b) => a + b, 0) + balanced.length);
  const take = (n: number) => free.splice(0, n);
  const redisDir = mkdtempSync(path.join(tmpdir(), 'toko-redis-'));
  const redis = new RedisServer(redisPort!, opts.persistentRedis === false ? {} : { dir: redisDir });
  await redis.start();
  const db: TestDatabase = await freshDatabase();
  const topology = await startSplit({
    dataDir: db.dataDir,
    gatewayPort: gateway!,
    basePort: 0,
    ports: Object.fromEntries(MODULE_NAMES.map((m, i) => [m, take(counts[i]!)])) as Record<ModuleName, number[]>,
    balancerPorts: Object.fromEntries(balanced.map((m) => [m, take(1)[0]!])),
    replicas: opts.replicas,
    restart: opts.restart,
    redisUrl: redis.url,
    env: {
      ...(db.url ? { DATABASE_URL: db.url } : {}),
      QUEUE_PREFIX: `s${randomBytes(3).toString('hex')}`,
      // Suites sign up many users from 127.0.0.1.
      REGISTER_MAX_PER_CLIENT: '1000000',
      ...env,
    },
  });
  return {
    topology,
    redis,
    url: topology.gatewayUrl,
    dataDir: db.dataDir,
    close: async () => {
      await topology.close();
      await redis.stop();
      await db.drop();
      rmSync(redisDir, { recursive: true, force: true });
    },
  };
}
