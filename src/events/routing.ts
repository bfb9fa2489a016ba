import type { ContractDef, EventDef, Subscription } from '../../kit/contract.ts';
import { handlerMismatch, type EventHandler, type EventRoutes } from '../../kit/events.ts';

/** What routing needs of a module definition. */
export interface RoutedModule {
  contract: ContractDef;
  consumes?: readonly Subscription[];
}

/**
 * Which modules consume each event type, from every module's `consumes`.
 * Throws when a module subscribes to a contract this build does not host as
 * a module, or to a type that contract does not publish.
 */
export function eventRoutes(modules: Record<string, RoutedModule>): EventRoutes {
  const routes: Record<string, string[]> = {};
  for (const [name, def] of Object.entries(modules)) {
    for (const { contract, types } of def.consumes ?? []) {
      if (modules[contract.name]?.contract !== contract)
        throw new Error(`module ${name} consumes events of ${contract.name}, which is not a module of this build`);
      for (const type of types) {
        if (!contract.events[type])
          throw new Error(`module ${name} consumes ${type}, which the ${contract.name} contract does not publish`);
        (routes[type] ??= []).push(name);
      }
    }
  }
  return routes;
}

/** Every published event type's definition, across all contracts. */
export function eventDefinitions(modules: Record<string, RoutedModule>): Record<string, EventDef> {
  return Object.fromEntries(Object.values(modules).flatMap((m) => Object.entries(m.contract.events)));
}

/**
 * Checks, before anything is delivered, that each hosted consumer has a
 * handler for every type routed to it and none for a type it does not
 * consume. Returns the problems, one line each (empty when all is well).
 */
export function routingProblems(
  routes: EventRoutes,
  published: Record<string, EventDef>,
  hosted: Map<string, Record<string, EventHandler> | undefined>,
): string[] {
  const problems: string[] = [];
  for (const [module, handlers] of hosted) {
    const { missing, extra } = handlerMismatch(routes, module, handlers);
    for (const type of missing) problems.push(`module ${module} consumes ${type} but has no handler for it`);
    for (const type of extra) {
      problems.push(
        published[type]
          ? `module ${module} has a handler for ${type} but does not list it in consumes`
          : `module ${module} has a handler for ${type}, which no module publishes`,
      );
    }
  }
  return problems;
}

/** The value events are ordered by: the producer and the payload's ordering key, or the event's own id when it has none. */
export function subjectOf(producer: string, def: EventDef | undefined, eventId: string, payload: unknown): string {
  const value =
    def && payload && typeof payload === 'object' ? (payload as Record<string, unknown>)[def.orderingKey] : undefined;
  return typeof value === 'string' ? `${producer}:${value}` : eventId;
}
