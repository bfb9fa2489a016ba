import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startServer, type RunningServer, type StartOptions } from '../../src/server.ts';

export interface TestDatabase {
  /** DATABASE_URL for the app, or undefined for the embedded database. */
  url: string | undefined;
  dataDir: string;
  drop(): Promise<void>;
}

/**
 * A fresh database for one test file: a uniquely named database on the
 * server named by TEST_DATABASE_URL, or a fresh PGlite data directory.
 */
export async function freshDatabase(): Promise<TestDatabase> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-test-'));
  const admin = process.env.TEST_DATABASE_URL;
  if (!admin) {
    return { url: undefined, dataDir, drop: async () => rmSync(dataDir, { recursive: true, force: true }) };
  }
  const name = `toko_test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: admin });
  await client.connect();
  await client.query(`create database "${name}"`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    dataDir,
    drop: async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      await c.query(`drop database if exists "${name}" with (force)`);
      await c.end();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface TestApp {
  url: string;
  server: RunningServer;
  db: TestDatabase;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log text, to search for secrets. */
  logText: () => string;
  /** Starts the app again on the same database (a restart). */
  restart(env?: Record<string, string>): Promise<void>;
  close(): Promise<void>;
}

export const TEST_ENV = {
  LOG_LEVEL: 'info',
  BCRYPT_COST: '4',
  PASSWORD_WORKERS: '2',
  PORT: '0',
  HOST: '127.0.0.1',
  SEED_DEMO: 'false',
  // Suites sign up hundreds of users from 127.0.0.1.
  REGISTER_MAX_PER_CLIENT: '1000000',
};

/** Starts the real app on an ephemeral port against a fresh database. */
export async function startTestApp(
  env: Record<string, string> = {},
  opts: Omit<StartOptions, 'logger'> = {},
): Promise<TestApp> {
  const db = await freshDatabase();
  const logs: Record<string, unknown>[] = [];
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const text = chunk.toString();
      chunks.push(text);
      for (const line of text.split('\n')) if (line.trim()) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const boot = async (extra: Record<string, string>) => {
    const config = loadConfig({
      ...TEST_ENV,
      DATA_DIR: db.dataDir,
      ...(db.url ? { DATABASE_URL: db.url } : {}),
      ...env,
      ...extra,
    });
    const logger = createLogger({ level: config.logLevel, destination: sink });
    return startServer(config, { ...opts, logger });
  };
  let server = await boot({});
  const app: TestApp = {
    url: server.url,
    get server() {
      return server;
    },
    db,
    logs,
    logText: () => chunks.join(''),
    async restart(extra = {}) {
      await server.close();
      server = await boot(extra);
      app.url = server.url;
    },
    async close() {
      await server.close();
      await db.drop();
    },
  };
  return app;
}

/** The SQL MikroORM a hosted module was given. */
export function sqlOrm(server: RunningServer, module: 'user' | 'product' | 'order') {
  const db = server.databases.get(module);
  if (db?.kind !== 'sql') throw new Error(`${module} has no SQL database here`);
  return db.orm;
}

/** The SQL database (MikroORM and plain SQL on its pool) a hosted module was given. */
export function sqlDatabase(server: RunningServer, module: 'user' | 'product' | 'order' | 'notification') {
  const db = server.databases.get(module);
  if (db?.kind !== 'sql') throw new Error(`${module} has no SQL database here`);
  return { orm: db.orm, sql: db.sql };
}
