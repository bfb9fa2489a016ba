import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { api, createProduct, registerCustomer, TEST_ADMIN_ENV } from './helpers/http.ts';
import { waitFor } from './helpers/wait.ts';

/**
 * The number of SQL statements one order costs end to end — the request
 * (customer check, pending row, reservation, confirmation with its outbox
 * row) and what follows it (the relay's claim and mark, the notification
 * handler) — counted at the driver, against the figure docs/performance.md states. A
 * deterministic guard for the order path's cost; the bench measures its speed.
 */
const PERFORMANCE = readFileSync(new URL('../docs/performance.md', import.meta.url), 'utf8');
const stated = Number(/one order costs \*\*(\d+) SQL statements\*\*/.exec(PERFORMANCE)?.[1]);

type Query = (this: pg.Client, config: unknown, ...rest: unknown[]) => unknown;
const original = pg.Client.prototype.query as unknown as Query;
let counting = false;
const seen: string[] = [];

let app: TestApp;
const http = api(() => app.url);

beforeAll(async () => {
  (pg.Client.prototype as unknown as { query: Query }).query = function (config, ...rest) {
    if (counting)
      seen.push(
        (typeof config === 'string' ? config : ((config as { text?: string })?.text ?? '?'))
          .replace(/\s+/g, ' ')
          .slice(0, 90),
      );
    return original.call(this, config, ...rest);
  };
  // Nothing in the background: no idle outbox polls, no recovery pass, no look for a moved-data marker; catalogue and user reads as warm as under load.
  app = await startTestApp({
    ...TEST_ADMIN_ENV,
    OUTBOX_POLL_MS: '600000',
    ORDER_RECOVERY_INTERVAL_SECONDS: '86400',
    MOVED_DATA_POLL_MS: '0',
    PRODUCT_CACHE_TTL_MS: '60000',
    USER_CACHE_TTL_MS: '60000',
  });
});

afterAll(async () => {
  (pg.Client.prototype as unknown as { query: Query }).query = original;
  await app?.close();
});

/** Until `done` holds and no statement has run for 300 ms. */
async function settled(done: () => boolean): Promise<void> {
  await waitFor('the order and its notification', async () => (done() ? true : undefined));
  for (let before = -1; before !== seen.length;) {
    before = seen.length;
    await sleep(300);
  }
}

describe('the cost of one order', () => {
  it(`stays within the ${stated} SQL statements docs/performance.md states, its notification included`, async () => {
    expect(stated).toBeGreaterThan(0);
    const customer = await registerCustomer(app.url);
    const token = (await http.post('/api/v1/users/login', { email: customer.email, password: customer.password })).body
      .accessToken as string;
    const product = await createProduct(app.url, { stock: 100 });
    const sent = () => app.logs.filter((l) => l.msg === 'notification sent' && l.template === 'order-confirmed').length;
    const order = () => http.post('/api/v1/orders', { items: [{ productId: product, quantity: 1 }] }, { token });

    // A first order warms pools, caches and prepared statements, as any order under load finds them.
    expect((await order()).status).toBe(201);
    await settled(() => sent() === 1);

    counting = true;
    expect((await order()).status).toBe(201);
    await settled(() => sent() === 2);
    counting = false;

    console.log(`[statements] one order: ${seen.length}\n  ${seen.join('\n  ')}`);
    expect(seen.length, seen.join('\n')).toBeLessThanOrEqual(stated);
  });
});
