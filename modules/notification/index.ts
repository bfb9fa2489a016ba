import { defineModule, type SqlDeps } from '../../src/kit/module.ts';
import { subscribe } from '../../src/kit/contract.ts';
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

export type { MailTransport };

export interface NotificationDeps extends SqlDeps {
  users: UserPort;
  locale: Locale;
  transport: { kind: 'log' } | { kind: 'smtp'; url: string; from: string };
  /** Replaces the configured transport (tests: a transport that fails on purpose). */
  transportOverride?: MailTransport;
}

export const notificationModule = defineModule<NotificationDeps, NotificationRuntime, typeof notificationContract>({
  name: 'notification',
  schema: 'notifications',
  contract: notificationContract,
  requires: ['user'],
  consumes: [subscribe(userContract, ['user.registered']), subscribe(orderContract, ['order.confirmed', 'order.cancelled'])],
  entities: [NotificationEntity],
  migrations: notificationMigrations,
  routes: notificationRoutes,
  deploy: {
    env: {
      ADMIN_EMAIL: '${ADMIN_EMAIL:-admin@toko.local}',
      ADMIN_PASSWORD: '${ADMIN_PASSWORD:?set ADMIN_PASSWORD (8 to 72 bytes) for the first administrator}',
    },
  },
  async create(deps) {
    const transport =
      deps.transportOverride ??
      // nodemailer is loaded only when mail goes out over SMTP.
      (deps.transport.kind === 'smtp' ? new (await import('./transports/smtp.ts')).SmtpTransport(deps.transport) : new LogTransport(deps.logger));
    const service = new NotificationService({ ...deps, transport });
    return {
      runtime: { service },
      implementation: {},
      handlers: service.handlers(),
      stop: () => transport.close(),
    };
  },
});
