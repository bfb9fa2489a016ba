import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { passedOn } from '../src/split/topology.ts';
import {
  TEST_REDIS_URL,
  dropQueueKeys,
  freePortBlock,
  freePorts,
  redisAnswers,
  testQueuePrefix,
  waitFor,
} from './helpers/wait.ts';
import { MODULE_NAMES } from '../src/registry.ts';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canRun = has('nginx') && (await redisAnswers());
if (!canRun) console.warn('split launcher test skipped: nginx and a Redis at TEST_REDIS_URL are needed');

describe('what the split launcher passes on to the services', () => {
  it("is the whole environment but what it sets per service and npm's own variables", () => {
    const { env, dropped } = passedOn({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_SERVICE_NAME: 'toko',
      PRODUCT_MONGODB_URL: 'mongodb://mongo/products',
      CORS_ORIGINS: 'https://shop.example',
      REMOTE_OPTIONS: '{"product":{"timeoutMs":500}}',
      LOG_LEVEL: 'debug',
      PORT: '3000',
      MODULES: 'user',
      ORDER_SERVICE_URL: 'http://elsewhere',
      METRICS_PORT: '9464',
      npm_lifecycle_event: 'split',
    });
    expect(env).toEqual({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_SERVICE_NAME: 'toko',
      PRODUCT_MONGODB_URL: 'mongodb://mongo/products',
      CORS_ORIGINS: 'https://shop.example',
      REMOTE_OPTIONS: '{"product":{"timeoutMs":500}}',
      LOG_LEVEL: 'debug',
    });
    expect(dropped).toEqual(['METRICS_PORT', 'MODULES', 'ORDER_SERVICE_URL', 'PORT']);
  });
});

describe.skipIf(!canRun)('npm run split', () => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-split-'));
  const prefix = testQueuePrefix();
  afterAll(async () => {
    rmSync(dataDir, { recursive: true, force: true });
    await dropQueueKeys(prefix);
  });

  it("prints every service's address, passes the whole environment on, and the gateway tells every service's readiness", async () => {
    const [gatewayPort] = await freePorts(1);
    const base = await freePortBlock(MODULE_NAMES.length);
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/split/main.ts'], {
      env: {
        PATH: process.env.PATH,
        DATA_DIR: dataDir,
        GATEWAY_PORT: String(gatewayPort),
        SPLIT_BASE_PORT: String(base),
        REDIS_URL: TEST_REDIS_URL,
        QUEUE_PREFIX: prefix,
        CORS_ORIGINS: 'https://shop.example',
        SEED_DEMO: 'false',
        LOG_LEVEL: 'warn',
        BCRYPT_COST: '4',
        // Set per service by the launcher: this one is named in a warning and not passed on.
        PORT: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    try {
      await waitFor(
        'the launcher to print the gateway',
        async () => (out.includes('toko split: gateway') ? true : undefined),
        90_000,
        200,
      );
      const printed: Record<string, string> = Object.fromEntries(
        [...out.matchAll(/^toko split: ([a-z]+)\s+(http:\/\/\S+)$/gm)].map((m) => [m[1]!, m[2]!]),
      );
      // One service per module of the registry, on the ports after SPLIT_BASE_PORT in start order.
      expect(printed).toEqual(Object.fromEntries(MODULE_NAMES.map((m, i) => [m, `http://127.0.0.1:${base + i + 1}`])));
      expect(out).toMatch(/"dropped":\["PORT"\]/);
      // CORS_ORIGINS reached the services (the old launcher passed on only a fixed list of prefixes).
      for (const url of Object.values(printed)) {
        const res = await fetch(`${url}/health`, { headers: { origin: 'https://shop.example' } });
        expect(res.headers.get('access-control-allow-origin'), url).toBe('https://shop.example');
      }
      const ready = await fetch(`http://127.0.0.1:${gatewayPort}/health/ready`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({
        status: 'ok',
        modules: Object.fromEntries(MODULE_NAMES.map((m) => [m, 'ok'])),
      });
    } finally {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    }
  }, 150_000);
});
