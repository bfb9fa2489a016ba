import { randomUUID } from 'node:crypto';
import type { FilterQuery } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { canSee, ownerScope, type Principal } from '../../kit/auth.ts';
import type { DeliveryContext, EventEnvelope, EventHandler, Inbox } from '../../kit/events.ts';
import { formatMoney } from '../../kit/money.ts';
import type { Page } from '../../kit/pagination.ts';
import { orderContract, type OrderDto } from '../order/contract.ts';
import { userContract, type UserPort } from '../user/contract.ts';
import { NotificationNotFound, type NotificationDto } from './contract.ts';
import { NotificationEntity, type Notification } from './notification.entity.ts';
import { orderCancelled } from './templates/order-cancelled.ts';
import { orderConfirmed } from './templates/order-confirmed.ts';
import { INTL_LOCALE, greetingName, type Locale, type Rendered } from './templates/template.ts';
import { welcome } from './templates/welcome.ts';
import type { MailTransport } from './transports/transport.ts';
import type { Sql } from '../../kit/sql.ts';
import { isUuid } from '../../kit/values.ts';
import type { Counter, Meter } from '../../kit/meter.ts';
import { table } from './schema.ts';

export interface NotificationServiceDeps {
  orm: MikroORM;
  sql: Sql;
  users: UserPort;
  inbox: Inbox;
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

/**
 * The notification's row after an attempt: created, or its attempt counted.
 * Parameters from `$first`: id, event id, user id, template, recipient,
 * subject, body, status, last error; `from` limits it to a source's rows.
 */
function recordSql(first: number, from = ''): string {
  const p = (i: number) => `$${first + i}`;
  return `insert into ${table('notifications')}
      ("id", "event_id", "user_id", "channel", "template", "recipient", "subject", "body", "status", "attempts", "last_error", "sent_at", "created_at", "updated_at")
    select ${p(0)}::uuid, ${p(1)}::uuid, ${p(2)}::varchar, 'email', ${p(3)}::varchar, ${p(4)}::varchar, ${p(5)}::varchar, ${p(6)}::text,
      ${p(7)}::varchar, 1, ${p(8)}::text, case when ${p(7)}::varchar = 'sent' then now() end, now(), now() ${from}
    on conflict ("event_id", "template") do update set "status" = excluded."status", "attempts" = "notifications"."attempts" + 1,
      "last_error" = excluded."last_error", "sent_at" = excluded."sent_at", "updated_at" = now()
    returning "id"`;
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
          const p = payload(userContract.events['user.registered'].payload, e);
          const user = await recipient(p.userId);
          return {
            userId: user.id,
            recipient: user.email,
            rendered: welcome[t]({ fullName: greetingName(user.fullName, user.username), username: user.username }),
          };
        }),
      'order.confirmed': (e, delivery) =>
        this.handle(e, delivery, 'order-confirmed', async () => {
          const order: OrderDto = payload(orderContract.events['order.confirmed'].payload, e);
          const user = await recipient(order.userId);
          const items = order.items.map((i) => ({
            name: i.name,
            quantity: i.quantity,
            lineTotal: this.money(i.lineTotal, order.currency),
          }));
          return {
            userId: user.id,
            recipient: user.email,
            rendered: orderConfirmed[t]({
              fullName: greetingName(user.fullName, user.username),
              orderId: order.id,
              items,
              total: this.money(order.total, order.currency),
            }),
          };
        }),
      'order.cancelled': (e, delivery) =>
        this.handle(e, delivery, 'order-cancelled', async () => {
          const order: OrderDto = payload(orderContract.events['order.cancelled'].payload, e);
          const user = await recipient(order.userId);
          return {
            userId: user.id,
            recipient: user.email,
            rendered: orderCancelled[t]({
              fullName: greetingName(user.fullName, user.username),
              orderId: order.id,
              total: this.money(order.total, order.currency),
            }),
          };
        }),
    };
  }

  /**
   * Sends the notification for an event once. A repeat that finds the event
   * in the inbox (it was sent) does nothing. Otherwise it is sent, then
   * recorded as sent together with the event in the inbox, in one statement.
   * A failed send is recorded with its attempt and error (`failed` on the
   * last attempt), not in the inbox, and rethrown, so the bus retries. As
   * before, a crash between the send and its record means one more send on
   * redelivery; nothing is ever lost.
   */
  private async handle(
    event: EventEnvelope,
    delivery: DeliveryContext,
    template: string,
    prepare: () => Promise<Prepared>,
  ): Promise<void> {
    if (await this.d.inbox.handled(event.id, template)) return;
    const p = await prepare();
    const mail = { id: `${event.id}.${template}`, to: p.recipient, subject: p.rendered.subject, text: p.rendered.text };
    const values = [randomUUID(), event.id, p.userId, template, mail.to, mail.subject, mail.text];
    try {
      await this.d.transport.send(mail);
      this.sends.inc({ transport: this.d.transport.name, result: 'sent' });
    } catch (err) {
      this.sends.inc({ transport: this.d.transport.name, result: 'failed' });
      const status = delivery.attempt >= delivery.maxAttempts ? 'failed' : 'pending';
      const error = err instanceof Error ? err.message : String(err);
      await this.d.sql.query(recordSql(1), [...values, status, error], 'notifications.record');
      throw err;
    }
    const [sent] = await this.d.inbox.handleOnce<{ id: string }>(this.d.sql, event.id, template, {
      text: recordSql(3, this.d.inbox.source),
      values: [...values, 'sent', null],
      name: 'notifications.record-sent',
    });
    this.d.logger.info(
      { notificationId: sent?.id, template, eventId: event.id, transport: this.d.transport.name },
      'notification sent',
    );
  }

  async list(
    principal: Principal,
    q: { skip: number; limit: number; userId?: string; status?: Notification['status'] },
  ): Promise<Page<NotificationDto>> {
    const where: FilterQuery<Notification> = {};
    const userId = ownerScope(principal, q.userId, 'notifications');
    if (userId) where.userId = userId;
    if (q.status) where.status = q.status;
    const [items, total] = await this.em().findAndCount(NotificationEntity, where, {
      orderBy: { createdAt: 'desc', id: 'desc' },
      offset: q.skip,
      limit: q.limit,
    });
    return { items: items.map(toNotificationDto), total, skip: q.skip, limit: q.limit };
  }

  /** Owner or admin; anyone else gets NotificationNotFound, as for an id that does not exist. */
  async get(id: string, principal: Principal): Promise<NotificationDto> {
    const n = isUuid(id) ? await this.em().findOne(NotificationEntity, { id }) : null;
    if (!n || !canSee(principal, n.userId)) throw new NotificationNotFound(`No notification with id ${id}`, { id });
    return toNotificationDto(n);
  }
}
