import { randomUUID } from 'node:crypto';
import type { FilterQuery } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { canSee, ownerScope, type Principal } from '../../src/kit/auth.ts';
import type { DeliveryContext, EventEnvelope, EventHandler } from '../../src/kit/events.ts';
import { formatMoney } from '../../src/kit/money.ts';
import type { Page } from '../../src/kit/pagination.ts';
import { orderContract, type OrderDto } from '../order/contract.ts';
import { userContract, type UserPort } from '../user/contract.ts';
import { NotificationNotFound, type NotificationDto } from './contract.ts';
import { NotificationEntity, type Notification } from './notification.entity.ts';
import { orderCancelled } from './templates/order-cancelled.ts';
import { orderConfirmed } from './templates/order-confirmed.ts';
import { INTL_LOCALE, type Locale, type Rendered } from './templates/template.ts';
import { welcome } from './templates/welcome.ts';
import type { MailTransport } from './transports/transport.ts';
import { isUuid } from '../../src/kit/values.ts';
import type { Counter, Meter } from '../../src/kit/meter.ts';

export interface NotificationServiceDeps {
  orm: MikroORM;
  users: UserPort;
  transport: MailTransport;
  locale: Locale;
  logger: Logger;
  meter: Meter;
}

interface Prepared {
  userId: string;
  recipient: string;
  rendered: Rendered;
}

export function toNotificationDto(n: Notification): NotificationDto {
  return {
    id: n.id,
    eventId: n.eventId,
    userId: n.userId,
    channel: n.channel,
    template: n.template,
    recipient: n.recipient,
    subject: n.subject,
    body: n.body,
    status: n.status,
    attempts: n.attempts,
    lastError: n.lastError,
    sentAt: n.sentAt?.toISOString() ?? null,
    createdAt: n.createdAt.toISOString(),
    updatedAt: n.updatedAt.toISOString(),
  };
}

export class NotificationService {
  /** `toko_notifications_sent_total{transport,result}`: every attempt to hand a notification to the transport. */
  private readonly sends: Counter<'transport' | 'result'>;

  constructor(private readonly d: NotificationServiceDeps) {
    this.sends = d.meter.counter({
      name: 'toko_notifications_sent_total',
      help: 'Attempts to send a notification by transport (log, smtp) and result (sent, failed)',
      labelNames: ['transport', 'result'],
    });
  }

  private em(): EntityManager {
    return this.d.orm.em.fork();
  }

  private money(minor: number, currency: string): string {
    return formatMoney(minor, currency, INTL_LOCALE[this.d.locale]);
  }

  /** Event handlers by type. Each is idempotent: a repeated event sends nothing new. */
  handlers(): Record<string, EventHandler> {
    const t = this.d.locale;
    const payload = <S extends z.ZodType>(schema: S, e: EventEnvelope) => schema.parse(e.payload) as z.output<S>;
    const recipient = async (userId: string) => this.d.users.getUser({ id: userId });
    return {
      'user.registered': (e, delivery) =>
        this.handle(e, delivery, 'welcome', async () => {
          const p = payload(userContract.events['user.registered'], e);
          const user = await recipient(p.userId);
          return { userId: user.id, recipient: user.email, rendered: welcome[t]({ fullName: user.fullName, username: user.username }) };
        }),
      'order.confirmed': (e, delivery) =>
        this.handle(e, delivery, 'order-confirmed', async () => {
          const order: OrderDto = payload(orderContract.events['order.confirmed'], e);
          const user = await recipient(order.userId);
          const items = order.items.map((i) => ({ name: i.name, quantity: i.quantity, lineTotal: this.money(i.lineTotal, order.currency) }));
          return {
            userId: user.id,
            recipient: user.email,
            rendered: orderConfirmed[t]({ fullName: user.fullName, orderId: order.id, items, total: this.money(order.total, order.currency) }),
          };
        }),
      'order.cancelled': (e, delivery) =>
        this.handle(e, delivery, 'order-cancelled', async () => {
          const order: OrderDto = payload(orderContract.events['order.cancelled'], e);
          const user = await recipient(order.userId);
          return {
            userId: user.id,
            recipient: user.email,
            rendered: orderCancelled[t]({ fullName: user.fullName, orderId: order.id, total: this.money(order.total, order.currency) }),
          };
        }),
    };
  }

  /**
   * Records the notification and the event id in the inbox in one
   * transaction (a repeat finds them and does not record again), then sends
   * unless already sent. A failed send counts an attempt and rethrows, so
   * the bus retries; on the last attempt the notification is `failed`.
   */
  private async handle(event: EventEnvelope, delivery: DeliveryContext, template: string, prepare: () => Promise<Prepared>): Promise<void> {
    let n = await this.em().findOne(NotificationEntity, { eventId: event.id, template });
    if (!n) {
      const p = await prepare();
      n = await this.em().transactional(async (tx) => {
        const fresh = await tx.execute(
          `insert into "notifications"."inbox" ("event_id", "handler") values (?, ?) on conflict do nothing returning "event_id"`,
          [event.id, template],
        );
        if (fresh.length === 0) return tx.findOneOrFail(NotificationEntity, { eventId: event.id, template });
        const now = new Date();
        return tx.create(NotificationEntity, {
          id: randomUUID(),
          eventId: event.id,
          userId: p.userId,
          channel: 'email',
          template,
          recipient: p.recipient,
          subject: p.rendered.subject,
          body: p.rendered.text,
          status: 'pending',
          attempts: 0,
          lastError: null,
          sentAt: null,
          createdAt: now,
          updatedAt: now,
        });
      });
    }
    if (n.status === 'sent') return;
    const em = this.em();
    try {
      await this.d.transport.send({ to: n.recipient, subject: n.subject, text: n.body });
      this.sends.inc({ transport: this.d.transport.name, result: 'sent' });
    } catch (err) {
      this.sends.inc({ transport: this.d.transport.name, result: 'failed' });
      const final = delivery.attempt >= delivery.maxAttempts;
      await em.nativeUpdate(
        NotificationEntity,
        { id: n.id },
        { attempts: n.attempts + 1, lastError: err instanceof Error ? err.message : String(err), status: final ? 'failed' : 'pending', updatedAt: new Date() },
      );
      throw err;
    }
    const now = new Date();
    await em.nativeUpdate(NotificationEntity, { id: n.id }, { attempts: n.attempts + 1, status: 'sent', sentAt: now, lastError: null, updatedAt: now });
    this.d.logger.info({ notificationId: n.id, template, eventId: event.id, transport: this.d.transport.name }, 'notification sent');
  }

  async list(principal: Principal, q: { skip: number; limit: number; userId?: string; status?: Notification['status'] }): Promise<Page<NotificationDto>> {
    const where: FilterQuery<Notification> = {};
    const userId = ownerScope(principal, q.userId, 'notifications');
    if (userId) where.userId = userId;
    if (q.status) where.status = q.status;
    const [items, total] = await this.em().findAndCount(NotificationEntity, where, { orderBy: { createdAt: 'desc', id: 'desc' }, offset: q.skip, limit: q.limit });
    return { items: items.map(toNotificationDto), total, skip: q.skip, limit: q.limit };
  }

  /** Owner or admin; anyone else gets NotificationNotFound, as for an id that does not exist. */
  async get(id: string, principal: Principal): Promise<NotificationDto> {
    const n = isUuid(id) ? await this.em().findOne(NotificationEntity, { id }) : null;
    if (!n || !canSee(principal, n.userId)) throw new NotificationNotFound(`No notification with id ${id}`, { id });
    return toNotificationDto(n);
  }
}
