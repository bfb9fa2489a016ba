import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePortBlock } from './helpers/wait.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-port-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('npm start on a port in use', () => {
  it('fails in one line before any migration or seed touches the database', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, DATABASE_URL: '' },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/in use/)]);
      // Nothing was migrated or seeded: the embedded database was never even created.
      expect(existsSync(dataDir) ? readdirSync(dataDir) : []).toEqual([]);
    } finally {
      taken.close();
    }
  }, 90_000);

  it('with an unreachable REDIS_URL fails in one line after a bounded wait, before the database starts', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const redisPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-redis-'));
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          PORT: '0',
          DATA_DIR: dir,
          DATABASE_URL: '',
          REDIS_URL: `redis://:sekrit@127.0.0.1:${redisPort}`,
        },
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status).toBe(1);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(/Redis at REDIS_URL does not answer/)]);
      expect(run.stderr).not.toContain('sekrit');
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});

describe('npm run split while another split holds its ports', () => {
  it('says why in a line, with no stack trace, and exits 1', async () => {
    // What a second `npm run split` finds: the first one's gateway and service ports taken.
    const base = await freePortBlock(6);
    const taken = Array.from({ length: 6 }, () => createServer());
    await Promise.all(taken.map((s, i) => new Promise<void>((r) => s.listen(base + i, '127.0.0.1', r))));
    const dir = mkdtempSync(path.join(tmpdir(), 'toko-split-'));
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/split/main.ts'], {
        cwd: ROOT,
        env: {
          ...process.env,
          GATEWAY_PORT: String(base),
          SPLIT_BASE_PORT: String(base + 1),
          DATA_DIR: dir,
          DATABASE_URL: '',
          LOG_LEVEL: 'warn',
        },
        encoding: 'utf8',
        timeout: 90_000,
      });
      expect(run.status).toBe(1);
      const lines = run.stderr.trim().split('\n');
      expect(lines[0]).toMatch(/^toko split: could not start: .*\d+/);
      expect(run.stderr).toMatch(/is in use \(is toko already running\?/);
      expect(run.stderr).not.toMatch(/^\s+at /m);
    } finally {
      taken.forEach((s) => s.close());
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
