import nodemailer, { type Transporter } from 'nodemailer';
import type { MailTransport, OutgoingMail } from './transport.ts';

/** Sends through an SMTP server (`SMTP_URL`, e.g. `smtp://user:pass@mail.example:587`) with nodemailer. */
export class SmtpTransport implements MailTransport {
  readonly name = 'smtp' as const;
  private readonly transporter: Transporter;

  constructor(opts: { url: string; from: string }) {
    this.transporter = nodemailer.createTransport(opts.url, { from: opts.from });
  }

  async send(mail: OutgoingMail): Promise<void> {
    // A Message-ID of the notification's own: a resend after a crash is the same message, which mail clients show once.
    await this.transporter.sendMail({
      messageId: `<${mail.id}@toko>`,
      to: mail.to,
      subject: mail.subject,
      text: mail.text,
    });
  }

  async close(): Promise<void> {
    this.transporter.close();
  }
}
