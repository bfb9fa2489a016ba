import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/app.ts';
import { call } from '../helpers/http.ts';
import { startTokoProcess, type TokoProcess } from '../helpers/process.ts';
import { FAST_RECOVERY, Shop, established, openFiles, report, rssMiB, sample } from './harness.ts';
import { MODULE_NAMES } from '../../src/registry.ts';

/**
 * Mixed traffic against one process for SOAK_SECONDS (default 120), memory
 * sampled every 5 s. Memory growth is reported, not judged (the bench owns
 * numbers); what must hold is that nothing leaks that can be counted: pool
 * connections all returned, no client socket left open, every event
 * delivered in the end, no 5xx. Open files are reported alongside.
 */
const SECONDS = Number(process.env.SOAK_SECONDS ?? 120);
let db: TestDatabase;
let toko: TokoProcess;
const shop = new Shop(() => toko.url);

beforeAll(async () => {
  db = await freshDatabase();
  toko = await startTokoProcess({
    ...FAST_RECOVERY,
    LOG_LEVEL: 'info',
    SEED_DEMO: 'true',
    DATA_DIR: db.dataDir,
    ...(db.url ? { DATABASE_URL: db.url } : {}),
  });
}, 60_000);
afterAll(async () => {
  toko?.child.kill('SIGKILL');
  await db?.drop();
});

/** Undelivered events over every outbox, and the age of the oldest. */
const outbox = async () => {
  const text = (await call(toko.url, 'GET', '/metrics')).text;
  const pending = ['user', 'order'].reduce(
    (n, m) => n + (sample(text, 'toko_outbox_events', { module: m, status: 'pending' }) ?? 0),
    0,
  );
  const oldest = Math.max(
    ...['user', 'order'].map((m) => sample(text, 'toko_outbox_oldest_pending_age_seconds', { module: m }) ?? 0),
  );
  return { pending, oldestSeconds: Math.round(oldest * 10) / 10 };
};

const pools = async () => {
  const text = (await call(toko.url, 'GET', '/metrics')).text;
  return Object.fromEntries(
    MODULE_NAMES.map((m) => [
      m,
      Object.fromEntries(
        ['used', 'free', 'pending'].map((state) => [
          state,
          sample(text, 'toko_db_pool_connections', { module: m, state }),
        ]),
      ),
    ]),
  );
};

describe(`soak: ${SECONDS} s of mixed traffic`, () => {
  it(
    'returns every pool connection and socket, answers no 5xx, and reports its memory',
    async () => {
      const admin = await shop.admin();
      const products = (
        await call<{ items: { id: string }[] }>(toko.url, 'GET', '/api/v1/products?limit=20')
      ).body.items.map((p) => p.id);
      const stocked = await shop.product(admin, 1_000_000);
      const customer = await shop.customer();
      const auth = { token: customer.token };
      const mix: (() => Promise<number>)[] = [
        ...Array(10).fill(
          async () =>
            (await call(toko.url, 'GET', `/api/v1/products/${products[Math.floor(Math.random() * products.length)]}`))
              .status,
        ),
        ...Array(3).fill(async () => (await call(toko.url, 'GET', '/api/v1/products?limit=20&sort=price')).status),
        ...Array(3).fill(async () => (await call(toko.url, 'GET', '/api/v1/users/me', auth)).status),
        ...Array(3).fill(
          async () =>
            (
              await call(toko.url, 'POST', '/api/v1/orders', {
                ...auth,
                body: { items: [{ productId: stocked, quantity: 1 }] },
              })
            ).status,
        ),
        async () => (await call(toko.url, 'GET', '/api/v1/orders?limit=10', auth)).status,
      ];
      // Warm-up, then the baseline: modules loaded, pools filled, JIT done.
      for (let i = 0; i < 200; i++) await mix[i % mix.length]!();
      await new Promise((r) => setTimeout(r, 6000)); // keep-alive sockets of the warm-up close
      const port = Number(new URL(toko.url).port);
      const before = {
        rss: rssMiB(toko.child.pid!),
        files: openFiles(toko.child.pid!),
        clients: established(port),
        pools: await pools(),
      };

      const counts = new Map<number, number>();
      const rss: number[] = [];
      const sampler = setInterval(() => rss.push(rssMiB(toko.child.pid!)), 5000);
      const until = Date.now() + SECONDS * 1000;
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (Date.now() < until) {
            const status = await mix[Math.floor(Math.random() * mix.length)]!().catch(() => 0);
            counts.set(status, (counts.get(status) ?? 0) + 1);
          }
        }),
      );
      clearInterval(sampler);
      // Events still queued in the outboxes are worked off before anything is counted.
      const backlogAtEnd = await outbox();
      const drainStarted = Date.now();
      while ((await outbox()).pending > 0 && Date.now() - drainStarted < 120_000)
        await new Promise((r) => setTimeout(r, 500));
      const drainMs = Date.now() - drainStarted;
      await new Promise((r) => setTimeout(r, 6000));
      const after = {
        rss: rssMiB(toko.child.pid!),
        files: openFiles(toko.child.pid!),
        clients: established(port),
        pools: await pools(),
      };
      const total = [...counts.values()].reduce((a, b) => a + b, 0);
      report(`soak ${SECONDS} s`, {
        requests: total,
        perSecond: Math.round(total / SECONDS),
        statuses: Object.fromEntries(counts),
        // The embedded database grows and gives back memory in large steps: growth is read between the first and the last sample under load.
        rssMiB: {
          afterWarmUp: before.rss,
          firstUnderLoad: rss[0],
          peak: Math.max(...rss),
          lastUnderLoad: rss.at(-1),
          idleAfter: after.rss,
          growthUnderLoad: (rss.at(-1) ?? 0) - (rss[0] ?? 0),
        },
        rssSamples: rss,
        outboxAtEnd: backlogAtEnd,
        outboxDrainedInMs: drainMs,
        openFiles: { before: before.files, after: after.files },
        clientSockets: { before: before.clients, after: after.clients },
        poolsBefore: before.pools,
        poolsAfter: after.pools,
      });
      expect([...counts.keys()].filter((s) => s >= 500 || s === 0)).toEqual([]);
      for (const p of Object.values(after.pools)) {
        expect(p).toMatchObject({ used: 0, pending: 0 });
        expect(p.free).toBeLessThanOrEqual(10); // DB_POOL_MAX: the pool never grew past its bound
      }
      // Every client socket was closed once idle: none held by a forgotten request.
      expect(after.clients).toBe(0);
      // Every event was delivered in the end.
      expect((await outbox()).pending).toBe(0);
    },
    (SECONDS + 120) * 1000,
  );
});
