import { notificationModule } from '../modules/notification/index.ts';
import { orderModule } from '../modules/order/index.ts';
import { productModule } from '../modules/product/index.ts';
import { userModule } from '../modules/user/index.ts';
import type { ModuleName } from './config.ts';
import { eventDefinitions, eventRoutes } from './events/routing.ts';
import type { AnyRouteDef } from './kit/route.ts';

/** Every module definition this build contains, by name. */
export const MODULE_DEFINITIONS = {
  user: userModule,
  product: productModule,
  order: orderModule,
  notification: notificationModule,
} as const satisfies Record<ModuleName, unknown>;

/** All public routes of all modules, hosted here or not: the OpenAPI document shows the whole API. */
export const ALL_MODULE_ROUTES: AnyRouteDef[] = Object.values(MODULE_DEFINITIONS).flatMap((m) => m.routes as AnyRouteDef[]);

/** Which modules consume each event type, from every module's `consumes`: the same in every process. */
export const EVENT_ROUTES = eventRoutes(MODULE_DEFINITIONS);

/** Every event type any module publishes, with its payload schema and ordering key. */
export const EVENT_DEFINITIONS = eventDefinitions(MODULE_DEFINITIONS);

/** Modules that publish events, and so keep an outbox. */
export const PRODUCERS = Object.entries(MODULE_DEFINITIONS)
  .filter(([, def]) => Object.keys(def.contract.events).length > 0)
  .map(([name]) => name as ModuleName);
