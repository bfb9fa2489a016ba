import { orderModule } from '../modules/order/index.ts';
import { productModule } from '../modules/product/index.ts';
import { userModule } from '../modules/user/index.ts';
import type { ModuleName } from './config.ts';
import type { AnyRouteDef } from './kit/route.ts';

/** Every module definition this build contains, by name. */
export const MODULE_DEFINITIONS = {
  user: userModule,
  product: productModule,
  order: orderModule,
} as const satisfies Record<ModuleName, unknown>;

/** All public routes of all modules, hosted here or not: the OpenAPI document shows the whole API. */
export const ALL_MODULE_ROUTES: AnyRouteDef[] = Object.values(MODULE_DEFINITIONS).flatMap((m) => m.routes as AnyRouteDef[]);
