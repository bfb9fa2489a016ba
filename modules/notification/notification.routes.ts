import { z } from 'zod';
import { Forbidden } from '../../kit/errors.ts';
import { pageOf, pageQuery } from '../../kit/pagination.ts';
import { routesFor } from '../../kit/route.ts';
import { idText } from '../../kit/values.ts';
import { NOTIFICATION_STATUSES, NotificationDto, NotificationNotFound } from './contract.ts';
import type { NotificationService } from './notification.service.ts';

export interface NotificationRuntime {
  service: NotificationService;
}

const route = routesFor<NotificationRuntime>();

export const notificationRoutes = [
  route({
    method: 'get',
    operationId: 'listNotifications',
    path: '/api/v1/notifications',
    summary: 'Your notifications, newest first (admins: everyone’s, filterable)',
    tags: ['notifications'],
    access: 'user',
    query: z.strictObject({
      ...pageQuery,
      status: z.enum(NOTIFICATION_STATUSES).optional(),
      userId: z.string().max(64).toLowerCase().optional(),
    }),
    response: pageOf(NotificationDto).meta({ id: 'NotificationPage' }),
    problems: [Forbidden],
    handler: ({ query, principal }, { service }) => service.list(principal!, query),
  }),
  route({
    method: 'get',
    operationId: 'getNotification',
    path: '/api/v1/notifications/:id',
    summary: 'One notification, whole (yours, or any for an admin)',
    tags: ['notifications'],
    access: 'user',
    params: z.strictObject({ id: idText() }),
    response: NotificationDto,
    problems: [NotificationNotFound],
    handler: ({ params, principal }, { service }) => service.get(params.id, principal!),
  }),
];
