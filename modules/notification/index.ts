import { z } from 'zod';
import { blankIsUnset, oneOf } from '../../kit/env.ts';
import type { Inbox } from '../../kit/events.ts';
import { defineModule, type SqlDeps } from '../../kit/module.ts';
import { subscribe } from '../../kit/contract.ts';
import { orderContract } from '../order/contract.ts';
import { userContract, type UserPort } from '../user/contract.ts';
import { notificationContract } from './contract.ts';
import { notificationMigrations } from './migrations/index.ts';
import { NotificationEntity } from './notification.entity.ts';
import { notificationRoutes, type NotificationRuntime } from './notification.routes.ts';
import { NotificationService } from './notification.service.ts';
import type { Locale } from './templates/template.ts';
import { LogTransport } from './transports/log.ts';
import type { MailTransport } from './transports/transport.ts';
import { SCHEMA } from './schema.ts';

export type { MailTransport };

export interface NotificationDeps extends SqlDeps {
  users: UserPort;
  inbox: Inbox;
  locale: Locale;
  transport: { kind: 'log' } | { kind: 'smtp'; url: string; from: string };
  /** Replaces the configured transport (tests: a transport that fails on purpose). */
  transportOverride?: MailTransport;
}

const notificationSettings = z
  .object({
    NOTIFY_LOCALE: oneOf(['id', 'en'], 'id').meta({
      description: 'language of notifications: `id` (Indonesian) or `en`',
    }),
    NOTIFY_TRANSPORT: oneOf(['log', 'smtp'], 'log').meta({
      description: '`log` writes each rendered e-mail to the log; `smtp` sends it through `SMTP_URL`',
    }),
    SMTP_URL: z
      .preprocess(
        blankIsUnset,
        z
          .string()
          .refine((v) => /^smtps?:\/\/.+/.test(v) && URL.canParse(v), 'expected an smtp:// or smtps:// URL')
          .optional(),
      )
      .meta({ description: '`smtp://user:pass@host:587` (or `smtps://`), required with `NOTIFY_TRANSPORT=smtp`' }),
    SMTP_FROM: z
      .preprocess(blankIsUnset, z.string().default('toko <no-reply@toko.local>'))
      .meta({ description: 'sender of notification e-mails' }),
  })
  .superRefine((env, ctx) => {
    if (env.NOTIFY_TRANSPORT === 'smtp' && !env.SMTP_URL)
      ctx.addIssue({ code: 'custom', path: ['SMTP_URL'], message: 'expected to be set when NOTIFY_TRANSPORT is smtp' });
  });

export const notificationModule = defineModule<
  NotificationDeps,
  NotificationRuntime,
  typeof notificationContract,
  typeof notificationSettings
>({
  name: 'notification',
  schema: SCHEMA,
  contract: notificationContract,
  requires: [userContract],
  consumes: [
    subscribe(userContract, ['user.registered']),
    subscribe(orderContract, ['order.confirmed', 'order.cancelled']),
  ],
  entities: [NotificationEntity],
  migrations: notificationMigrations,
  routes: notificationRoutes,
  deploy: {
    env: {
      ADMIN_EMAIL: '${ADMIN_EMAIL:-admin@toko.local}',
      ADMIN_PASSWORD: '${ADMIN_PASSWORD:?set ADMIN_PASSWORD (8 to 72 bytes) for the first administrator}',
    },
  },
  settings: notificationSettings,
  wire: (k) => ({
    ...k.base,
    ...k.sql(),
    users: k.port(userContract),
    inbox: k.inbox(),
    locale: k.settings.NOTIFY_LOCALE,
    transport:
      k.settings.NOTIFY_TRANSPORT === 'smtp' && k.settings.SMTP_URL
        ? { kind: 'smtp', url: k.settings.SMTP_URL, from: k.settings.SMTP_FROM }
        : { kind: 'log' },
    transportOverride: k.overrides.transport as MailTransport | undefined,
  }),
  async create(deps) {
    const transport =
      deps.transportOverride ??
      // nodemailer is loaded only when mail goes out over SMTP.
      (deps.transport.kind === 'smtp'
        ? new (await import('./transports/smtp.ts')).SmtpTransport(deps.transport)
        : new LogTransport(deps.logger));
    const service = new NotificationService({ ...deps, transport });
    return {
      runtime: { service },
      implementation: {},
      handlers: service.handlers(),
      stop: () => transport.close(),
    };
  },
});
