import type { EntitySchema } from '@mikro-orm/core';
import type { z } from 'zod';
import type { Identity, PasswordHasher, TokenIssuer } from './auth.ts';
import type { MikroORM as MongoORM } from '@mikro-orm/mongodb';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Meter } from './meter.ts';
import type { ModuleMigrations } from './migrations.ts';
import type { SharedState } from './shared.ts';
import type { Sql } from './sql.ts';
import type { ContractDef, ImplementationOf, PortOf, Subscription } from './contract.ts';
import type { EventHandler, EventRecorder, Inbox } from './events.ts';
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
  /**
   * The port of a module whose contract it `requires`: in process when hosted
   * here, over HTTP at that module's `<M>_SERVICE_URL` otherwise. Asking for
   * one it does not declare fails start-up.
   */
  port<K extends ContractDef>(contract: K): PortOf<K>;
  /** Its outbox: events it records commit with its own writes. */
  events(): EventRecorder;
  /** Its inbox (a module that `consumes` events): which events its handlers have dealt with. */
  inbox(): Inbox;
  /** The process's password-hashing pool. */
  passwords(): PasswordHasher;
  /** Signs access tokens (the token issuer only). */
  tokens: TokenIssuer;
  /** Throttles and cache drops shared with the other replicas of its service (in Redis with REDIS_URL, else in process). */
  shared: SharedState;
  /** What a test replaced for this module (the notification module's mail transport...). */
  overrides: Record<string, unknown>;
}

/** Demo data a module can load: `npm run seed` loads it into every hosted module that has some. */
export interface DemoData<R> {
  /** Adds whatever of the demo data is missing (idempotent); returns how many records it added. */
  load(runtime: R): Promise<number>;
  /** Whether start-up loads it as well (the module's own settings say; runs after its `start`). */
  atStart(runtime: R): Promise<boolean>;
}

/** What a module can offer the kernel besides its contract; the kernel looks each up by kind, never by module name. */
export interface ModuleCapabilities<C extends ContractDef> {
  /** This module keeps the accounts (kit/auth.ts `Identity`), built over its port (in process or remote); exactly one module of a build declares it. */
  identity?: (port: PortOf<C>) => Identity;
}

/** What `defineModule` takes: a module's definition, with the contracts it calls in `requires`. */
export interface ModuleSpec<
  D extends BaseDeps,
  R,
  C extends ContractDef,
  S extends ModuleSettings = ModuleSettings,
> extends Omit<ModuleDefinition<D, R, C, S>, 'requires'> {
  /** The contracts of the other modules it calls: `kernel.port` hands out these and no others. */
  requires: readonly ContractDef[];
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
  /** The modules whose contracts this one calls, by name (from the contracts its definition lists). */
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
  /** Capabilities the kernel looks up (`identity`). */
  provides?: ModuleCapabilities<C>;
  /** Its demo data, if it has some. */
  seed?: DemoData<R>;
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
  spec: ModuleSpec<D, R, C, S>,
): ModuleDefinition<D, R, C, S> {
  if (!/^[a-z][a-z0-9_]*$/.test(spec.schema)) {
    throw new Error(`module ${spec.name}: schema must be a lower-case SQL identifier`);
  }
  // Kept by name: the start order, the split's start waves and the compose file's dependencies read names.
  return { ...spec, requires: spec.requires.map((c) => c.name) };
}
