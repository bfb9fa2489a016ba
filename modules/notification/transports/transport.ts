export interface OutgoingMail {
  to: string;
  subject: string;
  text: string;
}

/** How a rendered notification leaves toko. Siblings: log.ts (default) and smtp.ts. */
export interface MailTransport {
  readonly name: 'log' | 'smtp';
  /** Resolves once the message is handed over; rejects so the delivery is retried. */
  send(mail: OutgoingMail): Promise<void>;
  close(): Promise<void>;
}
