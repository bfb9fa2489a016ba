import type { Logger } from 'pino';
import type { MailTransport, OutgoingMail } from './transport.ts';

/** Writes the rendered message to the log instead of sending it: the default, needs nothing. */
export class LogTransport implements MailTransport {
  readonly name = 'log' as const;
  constructor(private readonly logger: Logger) {}

  async send(mail: OutgoingMail): Promise<void> {
    this.logger.info({ to: mail.to, subject: mail.subject, text: mail.text }, 'e-mail (log transport)');
  }

  async close(): Promise<void> {}
}
