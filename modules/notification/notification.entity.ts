import { EntitySchema } from '@mikro-orm/core';
import type { NOTIFICATION_STATUSES } from './contract.ts';

export interface Notification {
  id: string;
  eventId: string;
  userId: string;
  channel: 'email';
  template: string;
  recipient: string;
  subject: string;
  body: string;
  status: (typeof NOTIFICATION_STATUSES)[number];
  attempts: number;
  lastError: string | null;
  sentAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export const NotificationEntity = new EntitySchema<Notification>({
  name: 'Notification',
  tableName: 'notifications',
  properties: {
    id: { type: 'uuid', primary: true },
    eventId: { type: 'uuid' },
    userId: { type: 'string', length: 64 },
    channel: { type: 'string', length: 16 },
    template: { type: 'string', length: 64 },
    recipient: { type: 'string', length: 254 },
    subject: { type: 'string', length: 300 },
    body: { type: 'text' },
    status: { type: 'string', length: 16 },
    attempts: { type: 'integer' },
    lastError: { type: 'text', nullable: true },
    sentAt: { type: 'Date', columnType: 'timestamptz', nullable: true },
    createdAt: { type: 'Date', columnType: 'timestamptz' },
    updatedAt: { type: 'Date', columnType: 'timestamptz' },
  },
});
