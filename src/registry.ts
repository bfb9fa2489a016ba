import { eventDefinitions, eventRoutes } from './events/routing.ts';
import type { AnyRouteDef } from '../kit/route.ts';

/**
 * The one list of the modules this build contains, by name. Everything that
 * needs to know the modules reads it: the configuration (MODULES,
 * `<M>_DATABASE_URL`, `<M>_SERVICE_URL`), the start order, the split
 * launcher, the documented routes, the event routes, the test rigs, and the
 * files `npm run generate` writes. A module is its folder plus one line here.
 */
export const MODULE_DEFINITIONS = {
  user: (await import('../modules/user/index.ts')).userModule,
  product: (await import('../modules/product/index.ts')).productModule,
  order: (await import('../modules/order/index.ts')).orderModule,
  notification: (await import('../modules/notification/index.ts')).notificationModule,
} as const;

export type ModuleName = keyof typeof MODULE_DEFINITIONS;

/** The module that issues and publishes the tokens every other module verifies: a service of its own starts before the rest. */
export const TOKEN_ISSUER: ModuleName = 'user';

/**
 * Modules in an order where each comes after every module it `requires`
 * (Kahn's algorithm, ties in list order). Throws on an unknown or circular requirement.
 */
export function startOrder(definitions: Record<string, { requires: readonly string[] }>): string[] {
  const names = Object.keys(definitions);
  for (const [name, def] of Object.entries(definitions)) {
    const unknown = def.requires.filter((r) => !names.includes(r));
    if (unknown.length > 0)
      throw new Error(`module ${name} requires ${unknown.join(', ')}, which this build does not contain`);
  }
  const order: string[] = [];
  while (order.length < names.length) {
    const next = names.find((n) => !order.includes(n) && definitions[n]!.requires.every((r) => order.includes(r)));
    if (!next)
      throw new Error(`modules require each other in a circle: ${names.filter((n) => !order.includes(n)).join(', ')}`);
    order.push(next);
  }
  return order;
}

/**
 * Modules grouped into waves that can start side by side, each wave after
 * the ones holding everything its modules require (and the token issuer, whose
 * keys every other service fetches).
 */
export function startWaves(
  definitions: Record<string, { requires: readonly string[] }>,
  tokenIssuer: string,
): string[][] {
  const level = new Map<string, number>();
  for (const name of startOrder(definitions)) {
    const needs = [
      ...definitions[name]!.requires,
      ...(name === tokenIssuer || !(tokenIssuer in definitions) ? [] : [tokenIssuer]),
    ];
    level.set(name, Math.max(0, ...needs.map((r) => level.get(r)! + 1)));
  }
  const waves: string[][] = [];
  for (const [name, l] of level) (waves[l] ??= []).push(name);
  return waves.filter(Boolean);
}

/** Every module toko knows, in start order. */
export const MODULE_NAMES = startOrder(MODULE_DEFINITIONS) as ModuleName[];

/** All public routes of all modules, hosted here or not: the OpenAPI document shows the whole API. */
export const ALL_MODULE_ROUTES: AnyRouteDef[] = Object.values(MODULE_DEFINITIONS).flatMap(
  (m) => m.routes as AnyRouteDef[],
);

/** Which modules consume each event type, from every module's `consumes`: the same in every process. */
export const EVENT_ROUTES = eventRoutes(MODULE_DEFINITIONS);

/** Every event type any module publishes, with its payload schema and ordering key. */
export const EVENT_DEFINITIONS = eventDefinitions(MODULE_DEFINITIONS);

/** Modules that publish events, and so keep an outbox. */
export const PRODUCERS = Object.entries(MODULE_DEFINITIONS)
  .filter(([, def]) => Object.keys(def.contract.events).length > 0)
  .map(([name]) => name as ModuleName);
