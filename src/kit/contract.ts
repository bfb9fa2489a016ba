import type { z } from 'zod';
import type { ErrorClass } from './errors.ts';

/** One method of a contract: JSON in, JSON out, both described by zod. */
export interface MethodDef<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  input: I;
  output: O;
  /** Safe to retry: calling twice has the same effect as calling once. */
  idempotent: boolean;
}

export interface ContractDef {
  /** The module that implements the contract. */
  name: string;
  methods: Record<string, MethodDef>;
  /** Events the module publishes, by type, with their payload schema. */
  events: Record<string, z.ZodType>;
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

export type EventPayload<C extends ContractDef, T extends keyof C['events']> = z.output<C['events'][T]>;
