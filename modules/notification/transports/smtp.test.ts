import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../../../test/helpers/app.ts';
import { api, newUser } from '../../../test/helpers/http.ts';
import { waitFor } from '../../../test/helpers/wait.ts';
import { SmtpTransport } from './smtp.ts';

interface Received {
  from: string;
  to: string[];
  raw: string;
}

const ADMIN = { email: 'admin@toko.test', password: 'admin-password-1' };
const inbox: Received[] = [];
let smtp: SMTPServer;
let port: number;
let app: TestApp;
const http = api(() => app.url);

beforeAll(async () => {
  // A real SMTP server on loopback, so the mail goes through nodemailer and the protocol for real.
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      let raw = '';
      stream.on('data', (c: Buffer) => (raw += c.toString()));
      stream.on('end', () => {
        inbox.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => smtp.listen(0, '127.0.0.1', resolve));
  port = (smtp.server.address() as AddressInfo).port;
  app = await startTestApp({
    NOTIFY_TRANSPORT: 'smtp',
    SMTP_URL: `smtp://127.0.0.1:${port}`,
    SMTP_FROM: 'Toko <halo@toko.test>',
    NOTIFY_LOCALE: 'en',
    ADMIN_EMAIL: ADMIN.email,
    ADMIN_PASSWORD: ADMIN.password,
    OUTBOX_POLL_MS: '50',
  });
});

afterAll(async () => {
  await app?.close();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
});

describe('the SMTP transport', () => {
  it('delivers the order confirmation to the customer with the subject and the total', async () => {
    const u = newUser();
    await http.post('/api/v1/users/register', u);
    const token = (await http.post('/api/v1/users/login', { email: u.email, password: u.password })).body
      .accessToken as string;
    const admin = (await http.post('/api/v1/users/login', ADMIN)).body.accessToken as string;
    const product = (
      await http.post(
        '/api/v1/products',
        { name: 'Teh Melati', price: 1_850_000, stock: 9, category: 'teh' },
        { token: admin },
      )
    ).body;
    const order = await http.post('/api/v1/orders', { items: [{ productId: product.id, quantity: 2 }] }, { token });
    expect(order.status).toBe(201);

    const mail = await waitFor('the confirmation in the SMTP inbox', async () => {
      for (const m of inbox.filter((r) => r.to.includes(u.email))) {
        const parsed = await simpleParser(m.raw);
        if (parsed.subject?.includes('confirmed')) return { envelope: m, parsed };
      }
      return undefined;
    });
    expect(mail.envelope.from).toBe('halo@toko.test');
    expect(mail.parsed.subject).toBe(`Order ${(order.body.id as string).slice(0, 8)} confirmed — IDR 37,000`);
    expect(mail.parsed.text).toContain('2 × Teh Melati: IDR 37,000');
    expect(mail.parsed.text).toContain('Total: IDR 37,000');
    expect(inbox.filter((m) => m.to.includes(u.email))).toHaveLength(2);
    // The notification's own Message-ID (its event and template): a resend after a crash is recognisably the same message.
    expect(mail.parsed.messageId).toMatch(/^<[0-9a-f-]{36}\.order-confirmed@toko>$/);
  });

  it('gives one notification the same Message-ID on every send, and different notifications different ones', async () => {
    const transport = new SmtpTransport({ url: `smtp://127.0.0.1:${port}`, from: 'halo@toko.test' });
    const to = `again-${Date.now()}@example.co.id`;
    try {
      for (const id of ['ev-1.welcome', 'ev-1.welcome', 'ev-2.welcome'])
        await transport.send({ id, to, subject: 'Halo', text: 'Selamat datang' });
    } finally {
      await transport.close();
    }
    const ids = await Promise.all(
      inbox.filter((m) => m.to.includes(to)).map(async (m) => (await simpleParser(m.raw)).messageId),
    );
    expect(ids).toEqual(['<ev-1.welcome@toko>', '<ev-1.welcome@toko>', '<ev-2.welcome@toko>']);
  });
});
