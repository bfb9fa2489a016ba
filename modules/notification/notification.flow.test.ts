import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../test/helpers/app.ts';
import { api, loadsFromOutside, newUser } from '../../test/helpers/http.ts';
import { dropQueueKeys, redisAnswers, TEST_REDIS_URL, testQueuePrefix, waitFor } from '../../test/helpers/wait.ts';
import { createInbox } from '../../kit/events.ts';
import { Migration20261210000000_inbox_holds_sent } from './migrations/Migration20261210000000_inbox_holds_sent.ts';
import { SCHEMA, table } from './schema.ts';
import type { MailTransport, OutgoingMail } from './transports/transport.ts';

const ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };

type Notification = {
  id: string;
  userId: string;
  template: string;
  recipient: string;
  subject: string;
  body: string;
  status: string;
  attempts: number;
  lastError: string | null;
  eventId: string;
};
type Page<T> = { items: T[]; total: number };

/** A transport that fails while `failures` lasts (forever with Infinity), recording what it sent. */
class ScriptedTransport implements MailTransport {
  readonly name = 'log' as const;
  readonly sent: OutgoingMail[] = [];
  failing = new Map<string, number>();
  async send(mail: OutgoingMail): Promise<void> {
    const left = this.failing.get(mail.to) ?? 0;
    if (left > 0) {
      this.failing.set(mail.to, left - 1);
      throw new Error(`mailbox ${mail.to} unavailable`);
    }
    this.sent.push(mail);
  }
  async close(): Promise<void> {}
}

const hasRedis = await redisAnswers();
if (!hasRedis) console.warn(`BullMQ event tests skipped: no Redis answers at ${TEST_REDIS_URL} (set TEST_REDIS_URL)`);

const buses = [
  { name: 'in-process', env: {} as Record<string, string>, skip: false },
  { name: 'BullMQ', env: { REDIS_URL: TEST_REDIS_URL }, skip: !hasRedis },
];

describe.each(buses)('events and notifications over the $name bus', ({ name, env, skip }) => {
  let app: TestApp;
  let admin: string;
  const transport = new ScriptedTransport();
  const http = api(() => app.url);
  const prefix = testQueuePrefix();

  beforeAll(async () => {
    if (skip) return;
    app = await startTestApp(
      {
        ...env,
        QUEUE_PREFIX: prefix,
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        EVENT_MAX_ATTEMPTS: '5',
        EVENT_BACKOFF_MS: '20',
        LOGIN_MAX_FAILURES: '5',
        OUTBOX_POLL_MS: '50',
      },
      { overrides: { notification: { transport } } },
    );
    admin = (await http.post('/api/v1/users/login', ADMIN)).body.accessToken as string;
  });
  afterAll(async () => {
    await app?.close();
    // The suite's queues go with it: npm test leaves nothing in the developer's Redis.
    if (!skip) await dropQueueKeys(prefix);
  });

  async function customer(overrides: Parameters<typeof newUser>[0] = {}) {
    const u = newUser(overrides);
    const reg = await http.post('/api/v1/users/register', u);
    expect(reg.status).toBe(201);
    const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
      .accessToken as string;
    return { ...u, id: reg.body.id as string, token };
  }

  const notificationsOf = (userId: string) =>
    http.get<Page<Notification>>(`/api/v1/notifications?userId=${userId}&limit=100`, { token: admin });

  const waitForNotifications = (userId: string, count: number, status = 'sent') =>
    waitFor(`${count} ${status} notification(s) for ${userId}`, async () => {
      const page = (await notificationsOf(userId)).body;
      const done = page.items.filter((n) => n.status === status);
      return done.length >= count ? page.items : undefined;
    });

  it.skipIf(skip)('sends exactly one welcome e-mail per registration', async () => {
    const c = await customer();
    const items = await waitForNotifications(c.id, 1);
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({
      template: 'welcome',
      recipient: c.email,
      status: 'sent',
      attempts: 1,
      subject: 'Selamat datang di toko!',
    });
    expect(items[0]!.body).toContain(c.fullName);
    expect(transport.sent.filter((m) => m.to === c.email)).toHaveLength(1);
    // The owner sees it whole; another customer does not see it at all.
    const own = await http.get<Page<Notification>>('/api/v1/notifications', { token: c.token });
    expect(own.body.items.map((n) => n.id)).toEqual([items[0]!.id]);
    const other = await customer();
    expect((await http.get(`/api/v1/notifications/${items[0]!.id}`, { token: other.token })).status).toBe(404);
    expect((await http.get(`/api/v1/notifications/${items[0]!.id}`, { token: c.token })).body).toMatchObject({
      body: items[0]!.body,
    });
  });

  it.skipIf(skip)('confirms an order with its items and the total in rupiah, and notices a cancellation', async () => {
    const c = await customer();
    const product = (
      await http.post(
        '/api/v1/products',
        { name: 'Kopi Toraja', price: 123_456_700, stock: 5, category: 'kopi' },
        { token: admin },
      )
    ).body;
    const order = await http.post(
      '/api/v1/orders',
      { items: [{ productId: product.id, quantity: 1 }] },
      { token: c.token },
    );
    expect(order.status).toBe(201);
    await http.post(`/api/v1/orders/${order.body.id as string}/cancel`, undefined, { token: c.token });
    const items = await waitForNotifications(c.id, 3);
    const confirmed = items.find((n) => n.template === 'order-confirmed')!;
    expect(confirmed.subject).toContain('Rp 1.234.567');
    expect(confirmed.body).toContain('1 × Kopi Toraja: Rp 1.234.567');
    expect(confirmed.body).toContain('Total: Rp 1.234.567');
    const cancelled = items.find((n) => n.template === 'order-cancelled')!;
    expect(cancelled.body).toContain(order.body.id as string);
  });

  it.skipIf(skip)('turns the same event delivered twice into one notification', async () => {
    const c = await customer();
    const [first] = await waitForNotifications(c.id, 1);
    const envelope = {
      id: first!.eventId,
      type: 'user.registered',
      version: 1,
      occurredAt: new Date().toISOString(),
      producer: 'user',
      requestId: null,
      payload: { userId: c.id, email: c.email, username: c.username, fullName: c.fullName },
    };
    const handler = app.server.modules.get('notification')!.handlers!['user.registered']!;
    await handler(envelope, { attempt: 1, maxAttempts: 5 });
    await handler(envelope, { attempt: 1, maxAttempts: 5 });
    const after = (await notificationsOf(c.id)).body;
    expect(after.total).toBe(1);
    expect(transport.sent.filter((m) => m.to === c.email)).toHaveLength(1);
  });

  it.skipIf(skip)('retries a transport that fails three times, then records it sent after 4 attempts', async () => {
    const email = `flaky-${randomBytes(4).toString('hex')}@example.co.id`;
    transport.failing.set(email, 3);
    const c = await customer({ email });
    const [n] = await waitForNotifications(c.id, 1);
    expect(n).toMatchObject({ status: 'sent', attempts: 4, lastError: null });
  });

  it.skipIf(skip)(
    'marks a notification failed when the transport never works, and keeps the event for replay',
    async () => {
      const email = `dead-${randomBytes(4).toString('hex')}@example.co.id`;
      transport.failing.set(email, Infinity);
      const c = await customer({ email });
      const [n] = await waitForNotifications(c.id, 1, 'failed');
      expect(n).toMatchObject({ status: 'failed', attempts: 5, lastError: `mailbox ${email} unavailable` });

      if (name === 'in-process') {
        // In process, the event itself is dead in the producer's outbox, and can be replayed.
        const dead = await waitFor('a dead user event', async () => {
          const page = await http.get<Page<{ id: string; type: string; attempts: number; lastError: string }>>(
            '/api/v1/admin/events/user?status=dead',
            { token: admin },
          );
          return page.body.items.find((e) => e.id === n!.eventId);
        });
        expect(dead).toMatchObject({ type: 'user.registered', attempts: 5 });
        transport.failing.delete(email);
        const replay = await http.post(`/api/v1/admin/events/user/${dead.id}/replay`, undefined, { token: admin });
        expect(replay.body).toEqual({ replayed: 1 });
        await waitForNotifications(c.id, 1, 'sent');
        expect(
          (await http.post(`/api/v1/admin/events/user/${dead.id}/replay`, undefined, { token: admin })).status,
        ).toBe(404);
      } else {
        // Over BullMQ the job is kept in the failed list, which Bull Board shows.
        const failed = await waitFor('the failed job in Bull Board', async () => {
          const res = await http.get<{ queues: { name: string; jobs: { id: string; failedReason: string }[] }[] }>(
            `/admin/queues/api/queues?activeQueue=${prefix}-notification&status=failed&page=1&jobsPerPage=50`,
            { token: admin },
          );
          return res.body.queues?.flatMap((q) => q.jobs ?? []).find((j) => j.id === n!.eventId);
        });
        expect(failed.failedReason).toBe(`mailbox ${email} unavailable`);
      }
    },
  );

  it.skipIf(skip)('delivers, after a restart, an event committed while the relay was down — once', async () => {
    await app.server.eventing.relays.get('user')!.stop();
    const c = await customer();
    // Committed with the user, not delivered: the relay that would have sent it is gone.
    const outbox = await http.get<Page<{ payload: { userId: string } }>>('/api/v1/admin/events/user?status=pending', {
      token: admin,
    });
    expect(outbox.body.items.some((e) => e.payload.userId === c.id)).toBe(true);
    expect((await notificationsOf(c.id)).body.total).toBe(0);
    await app.restart();
    admin = (await http.post('/api/v1/users/login', ADMIN)).body.accessToken as string;
    const items = await waitForNotifications(c.id, 1);
    expect(items).toHaveLength(1);
    expect(transport.sent.filter((m) => m.to === c.email)).toHaveLength(1);
  });

  it.skipIf(skip)(
    name === 'BullMQ'
      ? 'guards Bull Board: 401 without credentials, 403 for customers, 200 for admins'
      : 'has no Bull Board',
    async () => {
      const c = await customer();
      const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
      if (name === 'BullMQ') {
        const none = await http.get('/admin/queues');
        expect(none.status).toBe(401);
        expect(none.headers.get('www-authenticate')).toMatch(/^Basic/);
        expect((await http.get('/admin/queues', { token: c.token })).status).toBe(403);
        expect(
          (await http.get('/admin/queues', { headers: { authorization: basic(ADMIN.email, 'wrong') } })).status,
        ).toBe(401);
        const page = await http.get('/admin/queues', { token: admin });
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toContain('text/html');
        // The page and its scripts and styles load nothing from outside (Bull Board links Google Fonts unless stripped).
        const html = String(page.text);
        expect(loadsFromOutside(html)).toEqual([]);
        // A path for a base, never a request's Host (test/queues-board.test.ts opens the page in Chromium).
        expect(html).toContain('<base href="/admin/queues/"');
        const assets = [...html.matchAll(/(?:src|href)="(static\/[^"]+)"/g)].map((m) => m[1]!);
        expect(assets.length).toBeGreaterThan(1);
        for (const asset of assets) {
          const res = await http.get(`/admin/queues/${asset}`, { token: admin });
          expect({ asset, status: res.status }).toEqual({ asset, status: 200 });
          expect(loadsFromOutside(String(res.text)), asset).toEqual([]);
        }
        expect(
          (await http.get('/admin/queues', { headers: { authorization: basic(ADMIN.email, ADMIN.password) } })).status,
        ).toBe(200);
        // Bull Board's own traffic (page, scripts, API) is one route label, never `/` or unmatched.
        const routes = [
          ...(await http.get('/metrics')).text.matchAll(/^http_request_duration_seconds_count\{[^}]*route="([^"]*)"/gm),
        ].map((m) => m[1]);
        expect(routes).toContain('/admin/queues/*');
        expect(routes).not.toContain('/');
        const queues = await http.get<{ queues: { name: string }[] }>('/admin/queues/api/queues', { token: admin });
        expect(queues.body.queues.map((q) => q.name).some((q) => q.endsWith('-notification'))).toBe(true);

        // Any admin account signs in, checked against the user store; a customer's right password is 403.
        const second = newUser();
        const reg = await http.post('/api/v1/users/register', second);
        expect(
          (
            await http.send('PATCH', `/api/v1/users/${reg.body.id as string}`, {
              body: { role: 'admin' },
              token: admin,
            })
          ).status,
        ).toBe(200);
        expect(
          (await http.get('/admin/queues', { headers: { authorization: basic(second.email, second.password) } }))
            .status,
        ).toBe(200);
        expect(
          (await http.get('/admin/queues', { headers: { authorization: basic(c.email, c.password) } })).status,
        ).toBe(403);
        // The listening line says how to sign in.
        const listening = app.logs.find((l) => l.msg === 'toko is listening');
        expect(listening?.queues).toMatch(/\/admin\/queues$/);
        expect(listening?.queuesSignIn).toMatch(/any admin account/);

        // Cross-site changes with cached basic credentials are refused: a foreign Origin, or a form body.
        const creds = { authorization: basic(ADMIN.email, ADMIN.password) };
        const retry = `/admin/queues/api/queues/${prefix}-notification/retry/failed`;
        expect((await http.send('PUT', retry, { headers: { ...creds, origin: 'https://evil.example' } })).status).toBe(
          403,
        );
        expect(
          (
            await http.send('POST', `/admin/queues/api/queues/${prefix}-notification/add`, {
              raw: 'name=x',
              headers: { ...creds, 'content-type': 'application/x-www-form-urlencoded' },
            })
          ).status,
        ).toBe(403);
        expect((await http.send('PUT', retry, { headers: { ...creds, origin: app.url } })).status).not.toBe(403);

        // Basic auth is no password oracle: wrong guesses are throttled like login (LOGIN_MAX_FAILURES, 5 here), and then even the right password is refused.
        const target = await customer();
        expect(
          (await http.send('PATCH', `/api/v1/users/${target.id}`, { body: { role: 'admin' }, token: admin })).status,
        ).toBe(200);
        const guesses = [];
        for (let i = 0; i < 8; i++)
          guesses.push(
            (await http.get('/admin/queues', { headers: { authorization: basic(target.email, `guess-${i}-wrong`) } }))
              .status,
          );
        expect(guesses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
        expect(guesses.slice(5)).toEqual([429, 429, 429]);
        const right = await http.get('/admin/queues', {
          headers: { authorization: basic(target.email, target.password) },
        });
        expect(right.status).toBe(429);
        expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
        // The same throttle covers /login.
        expect(
          (await http.post('/api/v1/users/login', { email: target.email, password: target.password })).status,
        ).toBe(429);
      } else {
        expect((await http.get('/admin/queues', { token: admin })).status).toBe(404);
      }
    },
  );

  const notificationDb = () => {
    const db = app.server.databases.get('notification');
    if (db?.kind !== 'sql') throw new Error('notifications live in PostgreSQL');
    return db;
  };

  it.skipIf(skip || name !== 'in-process')(
    "does a handler's work once per event through the kernel's inbox, and leaves no mark when the work fails",
    async () => {
      const { sql } = notificationDb();
      const inbox = createInbox(sql, SCHEMA);
      // Work that reads the inbox's row: one when the event is new to the handler, none after.
      const work = { text: `select $3::text as "done" ${inbox.source}`, values: ['done'] };
      const eventId = randomUUID();
      expect(await inbox.handleOnce(sql, eventId, 'inbox-test', work)).toEqual([{ done: 'done' }]);
      expect(await inbox.handleOnce(sql, eventId, 'inbox-test', work)).toEqual([]);
      expect(await inbox.handled(eventId, 'inbox-test')).toBe(true);
      expect(await inbox.handled(eventId, 'another-handler')).toBe(false);
      // Work that fails takes its inbox row with it: the event is still to be handled.
      const failing = randomUUID();
      await expect(
        inbox.handleOnce(sql, failing, 'inbox-test', { text: `select 1 / 0 ${inbox.source}`, values: [] }),
      ).rejects.toThrow(/division by zero/);
      expect(await inbox.handled(failing, 'inbox-test')).toBe(false);
    },
  );

  it.skipIf(skip || name !== 'in-process')(
    'sends, once migrated, a notification whose failed attempt an earlier toko put in the inbox',
    async () => {
      const c = await customer();
      const [welcome] = await waitForNotifications(c.id, 1);
      const { orm, sql } = notificationDb();
      // What an earlier toko left after a failed attempt: the notification pending, and its event in the inbox all the same.
      const eventId = randomUUID();
      await sql.query(
        `insert into ${table('notifications')} ("id", "event_id", "user_id", "channel", "template", "recipient", "subject", "body", "status", "attempts", "last_error", "created_at", "updated_at")
         select $1, $2, "user_id", "channel", "template", "recipient", "subject", "body", 'pending', 1, 'mailbox unavailable', now(), now()
         from ${table('notifications')} where "id" = $3`,
        [randomUUID(), eventId, welcome!.id],
      );
      await sql.query(`insert into ${table('inbox')} ("event_id", "handler") values ($1, 'welcome')`, [eventId]);
      const migration = new Migration20261210000000_inbox_holds_sent(orm.em.getDriver(), orm.config);
      await migration.up();
      for (const q of migration.getQueries()) await orm.em.getConnection().execute(q as string);
      const inbox = createInbox(sql, SCHEMA);
      expect(await inbox.handled(eventId, 'welcome')).toBe(false);
      expect(await inbox.handled(welcome!.eventId, 'welcome')).toBe(true);

      const handler = app.server.modules.get('notification')!.handlers!['user.registered']!;
      const envelope = {
        id: eventId,
        type: 'user.registered',
        version: 1,
        occurredAt: new Date().toISOString(),
        producer: 'user',
        requestId: null,
        payload: { userId: c.id, email: c.email, username: c.username, fullName: c.fullName },
      };
      await handler(envelope, { attempt: 2, maxAttempts: 5 });
      const retried = (await notificationsOf(c.id)).body.items.find((n) => n.eventId === eventId);
      expect(retried).toMatchObject({ status: 'sent', attempts: 2, lastError: null });
      expect(transport.sent.filter((m) => m.to === c.email)).toHaveLength(2);
    },
  );
});
