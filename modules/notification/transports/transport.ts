export interface OutgoingMail {
  /**
   * The same for every send of one notification (its event and template): a
   * send repeated after a crash between the hand-over and its record carries
   * it again, so the receiver can tell it is the same message.
   */
  id: string;
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
