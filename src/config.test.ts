import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.ts';
import { productModule } from '../modules/product/index.ts';
import { MODULE_NAMES } from './registry.ts';
import { processSharedState } from '../kit/shared.ts';

describe('loadConfig', () => {
  it('writes readable logs in development unless told not to, JSON elsewhere', () => {
    expect(loadConfig({}).logPretty).toBe(true);
    expect(loadConfig({ LOG_PRETTY: 'false' }).logPretty).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production' }).logPretty).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', LOG_PRETTY: 'true' }).logPretty).toBe(true);
  });

  it('has working defaults for the embedded, single-process setup', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      modules: MODULE_NAMES,
      migrateOnStart: true,
      corsOrigins: [],
      bodyLimit: '100kb',
      currency: 'IDR',
    });
    expect(c.databaseUrls.user).toBeUndefined();
    expect(c.passwords.cost).toBe(12);
    expect(c.settings.user.ADMIN_EMAIL).toBeUndefined();
    expect(c.settings.user.LOGIN_MAX_FAILURES).toBe(5);
    expect(c.settings.order).toMatchObject({ ORDER_MAX_QUANTITY: 100, ORDER_PENDING_TIMEOUT_SECONDS: 60 });
    expect(c.settings.notification).toMatchObject({ NOTIFY_LOCALE: 'id', NOTIFY_TRANSPORT: 'log' });
  });

  it("reads each module's own variables with its settings schema, and the module wires them", () => {
    const wired = (env: Record<string, string>) => {
      const c = loadConfig(env);
      const kernel = {
        base: {},
        settings: c.settings.product,
        currency: c.currency,
        embedded: !c.databaseUrls.product && !c.mongoUrls.product,
        database: () => ({ kind: 'sql' }),
        shared: processSharedState(),
      };
      return productModule.wire(kernel as unknown as Parameters<typeof productModule.wire>[0]);
    };
    // An empty catalogue gets the demo products whatever the store, unless told not to.
    expect(wired({}).seedDemo).toBe(true);
    expect(wired({ DATABASE_URL: 'postgres://a@db/shop' }).seedDemo).toBe(true);
    expect(wired({ PRODUCT_MONGODB_URL: 'mongodb://m/shop' }).seedDemo).toBe(true);
    expect(wired({ DATABASE_URL: 'postgres://a@db/shop', SEED_DEMO: 'false' }).seedDemo).toBe(false);
    expect(wired({ DATABASE_URL: 'postgres://a@db/shop', SEED_DEMO: 'true' }).seedDemo).toBe(true);
    expect(wired({ SEED_DEMO: 'false', PRODUCT_CACHE_TTL_MS: '0' })).toMatchObject({ seedDemo: false, cacheTtlMs: 0 });
  });

  it('tunes each remote module on its own over the defaults', () => {
    const c = loadConfig({
      HTTP_CLIENT_TIMEOUT_MS: '3000',
      REMOTE_OPTIONS: 'product.timeoutMs=800,product.retries=0,user.resetTimeoutMs=2000',
    });
    expect(c.remoteTuning.product).toMatchObject({ timeoutMs: 800, retries: 0, resetTimeoutMs: 10_000 });
    expect(c.remoteTuning.user).toMatchObject({ timeoutMs: 3000, retries: 2, resetTimeoutMs: 2000 });
    expect(() => loadConfig({ REMOTE_OPTIONS: 'shop.timeoutMs=1' })).toThrow('REMOTE_OPTIONS: expected entries like');
  });

  it('prefers a module database URL over DATABASE_URL', () => {
    const c = loadConfig({ DATABASE_URL: 'postgres://a@db/shared', USER_DATABASE_URL: 'postgres://a@db/users' });
    expect(c.databaseUrls.user).toBe('postgres://a@db/users');
  });

  it.each([
    [{ PORT: 'abc' }, 'PORT: expected a whole number from 0 to 65535'],
    [{ PORT: '70000' }, 'PORT: expected a whole number from 0 to 65535'],
    [{ MODULES: 'user,payments' }, `MODULES: expected a comma-separated list of ${MODULE_NAMES.join(', ')}`],
    [{ NOTIFY_TRANSPORT: 'smtp' }, 'SMTP_URL: expected to be set when NOTIFY_TRANSPORT is smtp'],
    [{ REDIS_URL: 'localhost:6379' }, 'REDIS_URL: expected a redis:// connection URL'],
    [{ NOTIFY_LOCALE: 'fr' }, 'NOTIFY_LOCALE: expected id or en'],
    [{ SHOP_CURRENCY: 'RUPIAH' }, 'SHOP_CURRENCY: expected an ISO 4217 currency code'],
    [{ PRODUCT_MONGODB_URL: 'postgres://x/y' }, 'PRODUCT_MONGODB_URL: expected a mongodb:// connection URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL: expected a postgres:// connection URL'],
    [{ MIGRATE_ON_START: 'yes' }, 'MIGRATE_ON_START: expected true or false'],
    [{ CORS_ORIGINS: '*' }, 'CORS_ORIGINS: expected a comma-separated list of origins'],
    [{ BCRYPT_COST: '3' }, 'BCRYPT_COST: expected a whole number from 4 to 15'],
    [{ ADMIN_EMAIL: 'boss@toko.test' }, 'ADMIN_PASSWORD: expected to be set together'],
    [{ ADMIN_EMAIL: 'boss@toko.test', ADMIN_PASSWORD: 'short' }, 'ADMIN_PASSWORD: expected at least 8 characters'],
    [{ ADMIN_EMAIL: 'boss@toko.test', ADMIN_PASSWORD: 'é'.repeat(37) }, 'ADMIN_PASSWORD: expected at most 72 bytes'],
    [{ JWT_PRIVATE_KEY: 'not a pem' }, 'JWT_PRIVATE_KEY: expected a PEM private key'],
    [{ BODY_LIMIT: 'huge' }, 'BODY_LIMIT: expected a size like 100kb or 1mb'],
    [{ REPLICAS: '2' }, 'REPLICAS: more than one replica needs REDIS_URL'],
    [{ REPLICAS: '0' }, 'REPLICAS: expected a whole number from 1 to 1000'],
  ])('refuses %j naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('runs several replicas with Redis, and one without', () => {
    expect(loadConfig({ REPLICAS: '2', REDIS_URL: 'redis://127.0.0.1:6379' }).replicas).toBe(2);
    expect(loadConfig({}).replicas).toBe(1);
  });

  it('never echoes a secret value in its message', () => {
    expect(() => loadConfig({ ADMIN_EMAIL: 'boss@toko.test', ADMIN_PASSWORD: 'tiny' })).toThrow(/^(?!.*tiny).*$/);
  });
});

describe('starting with a bad configuration', () => {
  it('stops with exit code 1 and one line naming the variable', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH, PORT: 'abc', MODULES: 'nope' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(1);
    const lines = run.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^toko: invalid configuration: .*PORT: .*MODULES: /);
    expect(run.stdout).toBe('');
  });
});

describe('the configuration reference (docs/configuration.md)', () => {
  it('documents every environment variable the configuration reads', async () => {
    const { readFileSync } = await import('node:fs');
    const { ENV_VARIABLES } = await import('./config.ts');
    const reference = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const missing = ENV_VARIABLES.filter((v) => !reference.includes(`| \`${v}\` |`));
    expect(missing).toEqual([]);
  });

  it("says what every variable means: each schema, the kernel's and every module's, describes its variable", async () => {
    const { SETTINGS } = await import('./config.ts');
    const undescribed = SETTINGS.filter((s) => !s.schema.meta()?.description?.trim()).map((s) => s.name);
    expect(undescribed).toEqual([]);
  });
});

describe('starting a module without the modules it needs', () => {
  it('stops with a message naming what is missing', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH,
        MODULES: 'order',
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        MIGRATE_ON_START: 'false',
        PORT: '0',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/^toko: could not start: set USER_SERVICE_URL/);
    const withUser = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH,
        MODULES: 'user,order',
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        MIGRATE_ON_START: 'false',
        PORT: '0',
      },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(withUser.status).toBe(1);
    expect(withUser.stderr).toMatch(/module order needs the product module: set PRODUCT_SERVICE_URL, or host it here/);
  });
});
