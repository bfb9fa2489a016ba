import type { EntitySchema } from '@mikro-orm/core';
import type { z } from 'zod';
import type { PasswordHasher, TokenIssuer } from './auth.ts';
import type { MikroORM as MongoORM } from '@mikro-orm/mongodb';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Meter } from './meter.ts';
import type { ModuleMigrations } from './migrations.ts';
import type { Sql } from './sql.ts';
import type { ContractDef, ImplementationOf, PortOf, Subscription } from './contract.ts';
import type { EventHandler, EventRecorder } from './events.ts';
import type { AnyRouteDef } from './route.ts';

/** What the kernel gives every module it hosts; a module adds its own needs on top. */
export interface BaseDeps {
  logger: Logger;
  /** Counters for what the module does (`/metrics`), labelled with the module's name. */
  meter: Meter;
}

/** For modules that keep their data in PostgreSQL. */
export interface SqlDeps extends BaseDeps {
  /** This module's own MikroORM instance, bound to its own schema. Fork it per unit of work. */
  orm: MikroORM;
  /** Plain SQL on the same pool, for hot paths. */
  sql: Sql;
}

/** A module that can live in either store is handed whichever the configuration chose. */
export type ModuleDatabase = { kind: 'sql'; orm: MikroORM; sql: Sql } | { kind: 'mongo'; orm: MongoORM };

export interface ModuleInstance<R, C extends ContractDef> {
  /** Handed to this module's route handlers. */
  runtime: R;
  /** The module's side of its contract, called in process or served over a transport. */
  implementation: ImplementationOf<C>;
  /** Runs once after migrations, before the server accepts requests. */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** Loads demo data, idempotently (`npm run seed`); returns how many records were added. */
  seed?(): Promise<number>;
  /** Handlers for exactly the event types the definition `consumes`; each must be idempotent. */
  handlers?: Record<string, EventHandler>;
}

/** A module's own environment variables: a zod object keyed by variable name, validated with the rest of the configuration. */
export type ModuleSettings = z.ZodType<Record<string, unknown>, Record<string, unknown>> & {
  shape?: Record<string, z.ZodType>;
};

/**
 * What the kernel offers a module it hosts; the module's `wire` takes what
 * it needs from here and hands it to `create`. Nothing else reaches a module.
 */
export interface ModuleKernel<S = Record<string, unknown>> {
  /** Logger and meter, labelled with the module's name. */
  base: BaseDeps;
  /** Its settings, as its `settings` schema read them. */
  settings: S;
  /** The shop's single currency (SHOP_CURRENCY). */
  currency: string;
  /** Whether its data lives in the embedded database (no server URL was given). */
  embedded: boolean;
  /** Its PostgreSQL schema through MikroORM and plain SQL; throws when it lives in MongoDB. */
  sql(): { orm: MikroORM; sql: Sql };
  /** Its database, whichever kind. */
  database(): ModuleDatabase;
  /** The port of a module it `requires`: in process when hosted here, over HTTP at that module's `<M>_SERVICE_URL` otherwise. */
  port<K extends ContractDef>(contract: K): PortOf<K>;
  /** Its outbox: events it records commit with its own writes. */
  events(): EventRecorder;
  /** The process's password-hashing pool. */
  passwords(): PasswordHasher;
  /** Signs access tokens (the token issuer only). */
  tokens: TokenIssuer;
  /** What a test replaced for this module (the notification module's mail transport...). */
  overrides: Record<string, unknown>;
}

export interface ModuleDefinition<
  D extends BaseDeps,
  R,
  C extends ContractDef,
  S extends ModuleSettings = ModuleSettings,
> {
  name: C['name'];
  /** PostgreSQL schema that holds every table of this module and nothing else. */
  schema: string;
  contract: C;
  /** Other modules whose contracts this one calls. */
  requires: readonly string[];
  /** Events of other modules' contracts this module handles (`subscribe(contract, [types])`); each needs a handler. */
  consumes?: readonly Subscription[];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  entities: EntitySchema<any, any>[];
  migrations: ModuleMigrations;
  /** Entities for MongoDB, for a module that can also live there. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  mongoEntities?: EntitySchema<any, any>[];
  routes: AnyRouteDef<R>[];
  /** How the split compose file runs this module's service (`npm run generate` writes it from these). */
  deploy?: ModuleDeployment;
  /** Its own environment variables (names must not clash with the kernel's or another module's). */
  settings?: S;
  /** Takes what it needs from the kernel: the one place a module is wired. */
  wire(kernel: ModuleKernel<z.output<S>>): D;
  create(deps: D): Promise<ModuleInstance<R, C>>;
}

export interface ModuleDeployment {
  /** Its data in a PostgreSQL server of its own (the default), or in MongoDB (`<M>_MONGODB_URL`; needs `mongoEntities`). */
  store?: 'postgres' | 'mongo';
  /** More environment for its service, as compose writes it (`${ADMIN_PASSWORD:?...}` for a secret without default). */
  env?: Record<string, string>;
  /** Named volumes its service mounts, `name:/path`. */
  volumes?: string[];
}

export function defineModule<D extends BaseDeps, R, C extends ContractDef, S extends ModuleSettings = ModuleSettings>(
  definition: ModuleDefinition<D, R, C, S>,
): ModuleDefinition<D, R, C, S> {
  if (!/^[a-z][a-z0-9_]*$/.test(definition.schema)) {
    throw new Error(`module ${definition.name}: schema must be a lower-case SQL identifier`);
  }
  return definition;
}
