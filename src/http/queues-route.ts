import type { MetaRoute } from './openapi.ts';

/** Where Bull Board is served (./queues-board.ts), documented here so the board itself loads only when BullMQ is in use. */
export const QUEUES_PATH = '/admin/queues';

export const QUEUES_ROUTE: MetaRoute = {
  method: 'get',
  path: QUEUES_PATH,
  operationId: 'getQueuesBoard',
  security: [{ basicAuth: [] }, { bearerAuth: [] }],
  summary:
    'Bull Board: every toko queue (admin; Bearer token or HTTP basic with the admin credentials). 404 when BullMQ is not in use.',
  contentType: 'text/html',
};
