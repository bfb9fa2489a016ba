import { eventDefinitions, eventRoutes } from './events/routing.ts';
import type { Identity } from '../kit/auth.ts';
import type { AnyRouteDef } from '../kit/route.ts';

/**
 * The one list of the modules this build contains, by name. Everything that
 * needs to know the modules reads it: the configuration (MODULES,
 * `<M>_DATABASE_URL`, `<M>_SERVICE_URL`), the start order, the split
 * launcher, the documented routes, the event routes, the test rigs, and the
 * files `npm run generate` writes. A module is its folder plus one line here.
 * This is the one file of the kernel that imports modules, and only their
 * index.ts: the rest of the kernel reads what the definitions declare.
 */
export const MODULE_DEFINITIONS = {
  user: (await import('../modules/user/index.ts')).userModule,
  product: (await import('../modules/product/index.ts')).productModule,
  order: (await import('../modules/order/index.ts')).orderModule,
  notification: (await import('../modules/notification/index.ts')).notificationModule,
} as const;

export type ModuleName = keyof typeof MODULE_DEFINITIONS;

/** The one module among `definitions` that declares the identity capability (`provides.identity`). */
export function identityProvider(definitions: Record<string, { provides?: { identity?: unknown } }>): string {
  const providers = Object.keys(definitions).filter((name) => definitions[name]!.provides?.identity);
  if (providers.length !== 1) {
    throw new Error(
      `exactly one module must declare provides.identity (accounts and tokens); ${providers.length ? `${providers.join(' and ')} do` : 'none does'}`,
    );
  }
  return providers[0]!;
}

/**
 * The module that keeps the accounts: it issues and publishes the tokens
 * every other module verifies, and a service of its own starts before the rest.
 */
export const TOKEN_ISSUER = identityProvider(MODULE_DEFINITIONS) as ModuleName;

/** The identity capability over the token issuer's port, in process or remote. */
export const identityOver = (port: unknown): Identity =>
  (MODULE_DEFINITIONS[TOKEN_ISSUER].provides!.identity as (port: unknown) => Identity)(port);

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

/** The module each public route template belongs to (`/api/v1/users/:id` → user), for log and metric labels. */
export const ROUTE_MODULES: ReadonlyMap<string, ModuleName> = new Map(
  Object.entries(MODULE_DEFINITIONS).flatMap(([name, m]) =>
    (m.routes as AnyRouteDef[]).map((r) => [r.path, name as ModuleName] as const),
  ),
);

/** Which modules consume each event type, from every module's `consumes`: the same in every process. */
export const EVENT_ROUTES = eventRoutes(MODULE_DEFINITIONS);

/** Every event type any module publishes, with its payload schema and ordering key. */
export const EVENT_DEFINITIONS = eventDefinitions(MODULE_DEFINITIONS);

/** Modules that publish events, and so keep an outbox. */
export const PRODUCERS = Object.entries(MODULE_DEFINITIONS)
  .filter(([, def]) => Object.keys(def.contract.events).length > 0)
  .map(([name]) => name as ModuleName);
