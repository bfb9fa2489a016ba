import { userModule } from '../modules/user/index.ts';
import type { ModuleName } from './config.ts';
import type { AnyRouteDef } from './kit/route.ts';

/** Every module definition this build contains, by name. */
export const MODULE_DEFINITIONS = {
  user: userModule,
} as const satisfies Record<ModuleName, unknown>;

/** All public routes of all modules, hosted here or not: the OpenAPI document shows the whole API. */
export const ALL_MODULE_ROUTES: AnyRouteDef[] = Object.values(MODULE_DEFINITIONS).flatMap((m) => m.routes as AnyRouteDef[]);
