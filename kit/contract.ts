import type { z } from 'zod';
import type { ErrorClass } from './errors.ts';

/** One method of a contract: JSON in, JSON out, both described by zod. */
export interface MethodDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
  /** Safe to retry: calling twice has the same effect as calling once. */
  idempotent: boolean;
}

/** One event a contract publishes: its payload, and the payload field that says what it is about. */
export interface EventDef<P extends z.ZodType = z.ZodType> {
  payload: P;
  /**
   * The payload field naming the thing the event is about (an order's `id`, a
   * user's `userId`): events with the same value are delivered in the order
   * they happened; others side by side.
   */
  orderingKey: string;
}

/** Declares an event: `defineEvent(OrderDto, 'id')`; the ordering key must be a string field of the payload. */
export function defineEvent<P extends z.ZodObject>(
  payload: P,
  orderingKey: { [K in keyof z.output<P>]: z.output<P>[K] extends string ? K : never }[keyof z.output<P>] & string,
): EventDef<P> {
  return { payload, orderingKey };
}

export interface ContractDef {
  /** The module that implements the contract. */
  name: string;
  methods: Record<string, MethodDef>;
  /** Events the module publishes, by type. */
  events: Record<string, EventDef>;
  /** Typed errors the methods may throw; transports rebuild them by `code`. */
  errors: readonly ErrorClass[];
}

export function defineContract<const C extends ContractDef>(contract: C): C {
  return contract;
}

/** What a caller holds: the contract's methods as plain async functions. */
export type PortOf<C extends ContractDef> = {
  [K in keyof C['methods']]: (input: z.input<C['methods'][K]['input']>) => Promise<z.output<C['methods'][K]['output']>>;
};

/** What a module implements: it receives parsed input and returns its output. */
export type ImplementationOf<C extends ContractDef> = {
  [K in keyof C['methods']]: (input: z.output<C['methods'][K]['input']>) => Promise<z.input<C['methods'][K]['output']>>;
};

export type EventPayload<C extends ContractDef, T extends keyof C['events']> = z.output<C['events'][T]['payload']>;

/** The event types a contract publishes. */
export type EventTypeOf<C extends ContractDef> = keyof C['events'] & string;

/** Events of one contract a module handles; the types are checked against the contract's own. */
export interface Subscription {
  contract: ContractDef;
  types: readonly string[];
}

/** `subscribe(orderContract, ['order.confirmed'])`: a type the contract does not publish does not compile. */
export function subscribe<C extends ContractDef>(contract: C, types: readonly EventTypeOf<C>[]): Subscription {
  return { contract, types };
}
