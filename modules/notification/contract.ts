import { z } from 'zod';
import { defineContract, type PortOf } from '../../kit/contract.ts';
import { defineError } from '../../kit/errors.ts';

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
  .meta({
    id: 'Notification',
    example: {
      id: '0193a1b2-0000-7000-8000-00000000000a',
      eventId: '0193a1b2-0000-7000-8000-0000000000e1',
      userId: '0193a1b2-0000-7000-8000-000000000001',
      channel: 'email',
      template: 'order-confirmed',
      recipient: 'siti@example.co.id',
      subject: 'Pesanan Anda dikonfirmasi',
      body: 'Halo Siti Rahmawati, pesanan Anda sebesar Rp 170.000 sudah dikonfirmasi.',
      status: 'sent',
      attempts: 1,
      lastError: null,
      sentAt: '2026-12-03T08:16:01.000Z',
      createdAt: '2026-12-03T08:16:00.000Z',
      updatedAt: '2026-12-03T08:16:01.000Z',
    },
  });
export type NotificationDto = z.infer<typeof NotificationDto>;

export class NotificationNotFound extends defineError(
  'NOTIFICATION.NOT_FOUND',
  404,
  'Notification not found',
  z
    .object({ id: z.string().meta({ description: 'The id asked for' }) })
    .meta({ example: { id: '0193a1b2-0000-7000-8000-00000000000a' } }),
) {}

/** The notification module is driven by events; it offers other modules nothing to call yet. */
export const notificationContract = defineContract({
  name: 'notification',
  methods: {},
  events: {},
  errors: [NotificationNotFound],
});

export type NotificationPort = PortOf<typeof notificationContract>;
