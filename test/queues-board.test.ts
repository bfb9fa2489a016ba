import { randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp } from './helpers/app.ts';
import { api, newUser, TEST_ADMIN, TEST_ADMIN_ENV } from './helpers/http.ts';
import { startSplitRig } from './helpers/split.ts';
import { dropQueueKeys, redisAnswers, TEST_REDIS_URL, testQueuePrefix, waitFor } from './helpers/wait.ts';

/**
 * Bull Board at /admin/queues, in one process and behind the gateway: in a
 * real browser opened with the credentials in the URL (item 9), and as the
 * tool that can retry an event's job but never make one (item 10).
 */
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && process.env.CI !== 'true')
  console.warn(`Bull Board browser tests skipped: no ${CHROMIUM} (Debian: apt-get install chromium; .ci/run does)`);

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const canSplit = has('nginx') && has('redis-server');
if (!canSplit)
  console.warn('split Bull Board tests skipped: nginx and redis-server are needed (.ci/run installs them)');
const hasRedis = await redisAnswers();
if (!hasRedis) console.warn(`one-process Bull Board tests skipped: no Redis answers at ${TEST_REDIS_URL}`);

describe('the browser tests', () => {
  it.runIf(process.env.CI === 'true')('have Chromium under CI', () => {
    expect(hasChromium, `${CHROMIUM} is missing: .ci/run must apt-get install chromium`).toBe(true);
  });
});

/** A real SMTP server that refuses the recipients in `refusing` and counts what it accepted for each. */
class Mailbox {
  readonly refusing = new Set<string>();
  private readonly received = new Map<string, number>();
  private server: SMTPServer | undefined;
  url = '';

  async start(): Promise<void> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onRcptTo: (address, _session, callback) => {
        if (!this.refusing.has(address.address)) return callback();
        const refusal = Object.assign(new Error('mailbox unavailable'), { responseCode: 550 });
        callback(refusal);
      },
      onData: (stream, session, callback) => {
        stream.resume();
        stream.on('end', () => {
          for (const r of session.envelope.rcptTo) this.received.set(r.address, this.count(r.address) + 1);
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `smtp://127.0.0.1:${(this.server.server.address() as AddressInfo).port}`;
  }

  count(address: string): number {
    return this.received.get(address) ?? 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

interface Target {
  url: string;
  close(): Promise<void>;
}

const ENV = {
  ...TEST_ADMIN_ENV,
  NOTIFY_TRANSPORT: 'smtp',
  EVENT_MAX_ATTEMPTS: '2',
  EVENT_BACKOFF_MS: '20',
  OUTBOX_POLL_MS: '100',
  LOG_LEVEL: 'warn',
};

const topologies = [
  {
    name: 'one process',
    skip: !hasRedis,
    start: async (smtpUrl: string): Promise<Target> => {
      const prefix = testQueuePrefix();
      const app = await startTestApp({ ...ENV, SMTP_URL: smtpUrl, REDIS_URL: TEST_REDIS_URL, QUEUE_PREFIX: prefix });
      return {
        url: app.url,
        close: async () => {
          await app.close();
          await dropQueueKeys(prefix);
        },
      };
    },
  },
  {
    name: 'split behind the gateway',
    skip: !canSplit,
    start: async (smtpUrl: string): Promise<Target> => {
      const rig = await startSplitRig({ ...ENV, SMTP_URL: smtpUrl });
      return { url: rig.url, close: () => rig.close() };
    },
  },
];

type Counts = Record<string, number>;
type Queues = { queues: { name: string; counts: Counts; jobs: { id: string; data: { id: string } }[] }[] };

describe.each(topologies)('Bull Board: $name', ({ start, skip }) => {
  let target: Target;
  let admin: string;
  const mailbox = new Mailbox();
  const http = api(() => target.url);

  beforeAll(async () => {
    if (skip) return;
    await mailbox.start();
    target = await start(mailbox.url);
    admin = (await http.post('/api/v1/users/login', TEST_ADMIN)).body.accessToken as string;
  }, 180_000);
  afterAll(async () => {
    await target?.close();
    await mailbox.close();
  }, 60_000);

  const board = <T = Queues>(method: string, p: string, body?: unknown) =>
    http.send<T>(method, `/admin/queues/api${p}`, {
      token: admin,
      // What the board's own page sends with every change: its origin.
      headers: { origin: new URL(target.url).origin },
      ...(body === undefined ? {} : { body }),
    });
  const queues = async () => (await board('GET', '/queues?page=1&jobsPerPage=50')).body.queues;
  const notificationQueue = async () => (await queues()).find((q) => q.name.endsWith('-notification'))!.name;
  const jobOf = (queue: string, status: string, eventId: string) =>
    waitFor(`the ${status} job of ${eventId}`, async () => {
      const res = await board('GET', `/queues?activeQueue=${queue}&status=${status}&page=1&jobsPerPage=50`);
      return res.body.queues.find((q) => q.name === queue)?.jobs.find((j) => j.data.id === eventId);
    });

  /** A customer whose welcome mail is refused until `refuse` ends, and the event id of that mail. */
  async function customerWithRefusedMail() {
    const u = newUser();
    mailbox.refusing.add(u.email);
    const reg = await http.post('/api/v1/users/register', u);
    expect(reg.status).toBe(201);
    const userId = reg.body.id as string;
    const failed = await waitFor('the failed welcome mail', async () => {
      const page = await http.get<{ items: { status: string; eventId: string }[] }>(
        `/api/v1/notifications?userId=${userId}`,
        { token: admin },
      );
      return page.body.items.find((n) => n.status === 'failed');
    });
    return { ...u, userId, eventId: failed.eventId };
  }

  it.skipIf(skip)(
    'retries a failed event through the board once, keeping its event id; a retry of the done job sends nothing more',
    async () => {
      const c = await customerWithRefusedMail();
      const queue = await notificationQueue();
      const failed = await jobOf(queue, 'failed', c.eventId);
      expect(mailbox.count(c.email)).toBe(0);

      mailbox.refusing.delete(c.email);
      const retry = await board('PUT', `/queues/${queue}/${failed.id}/retry`);
      expect(retry.status, retry.text).toBe(204);
      await jobOf(queue, 'completed', c.eventId);
      await waitFor('the welcome mail', async () => (mailbox.count(c.email) === 1 ? true : undefined));

      // The same job again, done this time: the inbox knows its event id.
      const done = await board<{ job: { processedOn: number } }>('GET', `/queues/${queue}/${failed.id}`);
      expect((await board('PUT', `/queues/${queue}/${failed.id}/retry`)).status).toBe(204);
      await waitFor('the retried job done again', async () => {
        const job = await board<{ job: { processedOn: number }; status: string }>(
          'GET',
          `/queues/${queue}/${failed.id}`,
        );
        return job.body.status === 'completed' && job.body.job.processedOn > done.body.job.processedOn
          ? true
          : undefined;
      });
      const notifications = await http.get<{ items: { status: string; eventId: string }[] }>(
        `/api/v1/notifications?userId=${c.userId}`,
        { token: admin },
      );
      expect(notifications.body.items.map((n) => [n.eventId, n.status])).toEqual([[c.eventId, 'sent']]);
      expect(mailbox.count(c.email)).toBe(1);
    },
  );

  it.skipIf(skip)('refuses to add a job or rewrite one, with a problem document, and nothing is sent', async () => {
    const u = newUser();
    const reg = await http.post('/api/v1/users/register', u);
    const userId = reg.body.id as string;
    await waitFor('the welcome mail', async () => (mailbox.count(u.email) === 1 ? true : undefined));
    const queue = await notificationQueue();
    const [done] = (
      await http.get<{ items: { eventId: string }[] }>(`/api/v1/notifications?userId=${userId}`, { token: admin })
    ).body.items;
    const job = await jobOf(queue, 'completed', done!.eventId);

    // An administrator's "add job" with the same event under a fresh id: a second welcome mail, were it accepted.
    const fresh = { ...job.data, id: randomUUID() };
    const added = await board('POST', `/queues/${queue}/add`, { name: 'user.registered', data: fresh, options: {} });
    expect(added.status).toBe(403);
    expect(added.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(added.body).toMatchObject({ status: 403, code: 'QUEUES.JOB_REFUSED' });

    const rewritten = await board('PATCH', `/queues/${queue}/${job.id}/update-data`, { jobData: fresh });
    expect(rewritten.status).toBe(403);
    expect(rewritten.body).toMatchObject({ code: 'QUEUES.JOB_REFUSED' });

    // Near misses reach no handler either: a refusal as a problem document, never a 500.
    for (const near of [`/queues/${queue}/%61dd`, `/queues/${queue}/add/`, '/nothing']) {
      const res = await board('POST', near, { name: 'user.registered', data: fresh, options: {} });
      expect([403, 404, 405], `${near}: ${res.text}`).toContain(res.status);
      expect(res.headers.get('content-type'), near).toMatch(/^application\/problem\+json/);
    }

    // No job holds the fresh event id: an accepted one would be listed (done jobs are kept an hour).
    const jobs = await board('GET', `/queues?activeQueue=${queue}&status=latest&page=1&jobsPerPage=50`);
    const ids = jobs.body.queues.find((q) => q.name === queue)!.jobs.map((j) => j.data.id);
    expect(ids).toContain(done!.eventId);
    expect(ids).not.toContain(fresh.id);
    expect(mailbox.count(u.email)).toBe(1);
  });

  const basic = (email: string, password: string) =>
    `Basic ${Buffer.from(`${email}:${password}`, 'utf8').toString('base64')}`;
  const boardAs = (authorization: string) =>
    http.get('/admin/queues/api/queues?page=1&jobsPerPage=1', { headers: { authorization } });

  it.skipIf(skip)(
    'forgets a basic sign-in the moment its admin is demoted, on whichever process serves the board',
    async () => {
      const u = newUser();
      const reg = await http.post('/api/v1/users/register', u);
      expect(reg.status).toBe(201);
      const id = reg.body.id as string;
      expect((await http.send('PATCH', `/api/v1/users/${id}`, { body: { role: 'admin' }, token: admin })).status).toBe(
        200,
      );
      const signIn = basic(u.email, u.password);
      expect((await boardAs(signIn)).status).toBe(200);
      expect((await boardAs(signIn)).status).toBe(200);
      expect(
        (await http.send('PATCH', `/api/v1/users/${id}`, { body: { role: 'customer' }, token: admin })).status,
      ).toBe(200);
      // No wait: the remembered sign-in was dropped before the PATCH answered (over Redis when the board is elsewhere).
      expect((await boardAs(signIn)).status).toBe(403);
    },
  );

  it.skipIf(skip)('answers 401 to a NUL in the basic e-mail: bad input, never a database outage', async () => {
    const res = await boardAs(basic('admin\u0000@toko.test', 'whatever-password'));
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it.skipIf(skip)('writes no request header into the page', async () => {
    const page = await http.get('/admin/queues', {
      token: admin,
      headers: { 'x-forwarded-host': 'evil.example"><script>alert(1)</script>', 'x-forwarded-proto': 'javascript' },
    });
    expect(page.status).toBe(200);
    expect(page.text).toContain('<base href="/admin/queues/"');
    expect(page.text).not.toMatch(/evil\.example|<script>alert|javascript:/);
  });

  describe.skipIf(skip || !hasChromium)('in Chromium', () => {
    let browser: BrowserContext;
    let profile: string;
    const problems: string[] = [];
    beforeAll(async () => {
      profile = mkdtempSync(path.join(tmpdir(), 'toko-chromium-'));
      browser = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        args: [
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
      });
    }, 60_000);
    afterAll(async () => {
      await browser?.close();
      if (profile) rmSync(profile, { recursive: true, force: true });
    });

    const watch = (page: Page) => {
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
      page.on('response', (r) => {
        if (r.status() >= 400) problems.push(`${r.status()}: ${r.url()}`);
      });
      return page;
    };

    it('opened with the credentials in the URL, shows every queue with its counts; a queue opens, and reloads', async () => {
      await http.post('/api/v1/users/register', newUser());
      await customerWithRefusedMail();
      const expected = await queues();
      expect(expected.length).toBeGreaterThan(0);

      const page = watch(await browser.newPage());
      const signedIn = new URL('/admin/queues', target.url);
      signedIn.username = encodeURIComponent(TEST_ADMIN.email);
      signedIn.password = encodeURIComponent(TEST_ADMIN.password);
      await page.goto(signedIn.href);

      for (const q of expected) {
        const link = page.locator(`a[title="${q.name}"]`);
        const card = page.locator('[class*="queueCard-"]', { has: link });
        const total = Object.values(q.counts).reduce((a, b) => a + b, 0);
        await card.getByText(new RegExp(`^${total} Jobs?$`)).waitFor({ timeout: 15_000 });
        // One bar per state that holds jobs, named after it.
        for (const [state, n] of Object.entries(q.counts))
          expect(await card.locator(`[class*="${state}-"][class*="bar-"]`).count(), `${q.name} ${state}`).toBe(
            n > 0 ? 1 : 0,
          );
        expect(await card.locator(link).getAttribute('href')).toBe(`/admin/queues/queue/${q.name}`);
      }

      const queue = expected.find((q) => q.name.endsWith('-notification'))!.name;
      await page.locator(`[class*="queueCard-"] a[title="${queue}"]`).click();
      await page.waitForURL(`**/admin/queues/queue/${queue}`);
      await page.getByText('user.registered').first().waitFor({ timeout: 15_000 });

      const reloaded = await page.reload();
      expect(reloaded?.status()).toBe(200);
      expect(new URL(page.url()).pathname).toBe(`/admin/queues/queue/${queue}`);
      await page.getByText('user.registered').first().waitFor({ timeout: 15_000 });
      expect(problems).toEqual([]);
      await page.close();
    }, 60_000);
  });
});
