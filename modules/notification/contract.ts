import { z } from 'zod';
import { defineContract, type PortOf } from '../../src/kit/contract.ts';
import { defineError } from '../../src/kit/errors.ts';

export const NOTIFICATION_STATUSES = ['pending', 'sent', 'failed'] as const;

/** A notification exactly as it was rendered and sent. */
export const NotificationDto = z
  .object({
    id: z.string(),
    eventId: z.string(),
    userId: z.string(),
    channel: z.literal('email'),
    template: z.string(),
    recipient: z.string(),
    subject: z.string(),
    body: z.string(),
    status: z.enum(NOTIFICATION_STATUSES),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    sentAt: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .meta({ id: 'Notification' });
export type NotificationDto = z.infer<typeof NotificationDto>;

export class NotificationNotFound extends defineError('NOTIFICATION.NOT_FOUND', 404, 'Notification not found') {}

/** The notification module is driven by events; it offers other modules nothing to call yet. */
export const notificationContract = defineContract({
  name: 'notification',
  methods: {},
  events: {},
  errors: [NotificationNotFound],
});

export type NotificationPort = PortOf<typeof notificationContract>;
