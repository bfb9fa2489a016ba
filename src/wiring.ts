import type { Logger } from 'pino';
import { inProcessPort } from '../adapters/inprocess/port.ts';
import type { PasswordPool } from './auth/passwords.ts';
import type { Config, ModuleName } from './config.ts';
import type { ContractDef, PortOf } from '../kit/contract.ts';
import type { TokenIssuer } from '../kit/auth.ts';
import { createInbox, type EventRecorder } from '../kit/events.ts';
import type { Meter } from '../kit/meter.ts';
import type { SharedState } from '../kit/shared.ts';
import type { BaseDeps, ModuleDatabase, ModuleDefinition, ModuleInstance, ModuleKernel } from '../kit/module.ts';
import { MODULE_DEFINITIONS } from './registry.ts';

/** The ports of the modules this process hosts, by module name, as they are built. */
export type Ports = Map<string, unknown>;

export interface WiringContext {
  config: Config;
  logger: Logger;
  databases: Map<ModuleName, ModuleDatabase>;
  ports: Ports;
  tokens: TokenIssuer;
  passwords: () => PasswordPool;
  recorder: (module: ModuleName) => EventRecorder;
  /** The port of a module another process serves, or undefined when none is configured. */
  remote: (name: ModuleName) => unknown;
  /** Each module's counters, labelled with its name. */
  meter: (module: ModuleName) => Meter;
  /** Throttles and cache drops shared with the other replicas. */
  shared: SharedState;
  /** What tests replace, per module (`{ notification: { transport } }`). */
  overrides?: Partial<Record<ModuleName, Record<string, unknown>>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModuleInstance = ModuleInstance<unknown, any>;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDefinition = ModuleDefinition<BaseDeps, unknown, any, any>;

/** What the kernel offers one module: each module's `wire` takes what it needs from here. */
export function kernelFor(ctx: WiringContext, def: AnyDefinition): ModuleKernel {
  const name = def.name as ModuleName;
  const database = () => {
    const db = ctx.databases.get(name);
    if (!db) throw new Error(`module ${name} has no database`);
    return db;
  };
  const sql = () => {
    const db = database();
    if (db.kind !== 'sql') throw new Error(`module ${name} needs a SQL database`);
    return { orm: db.orm, sql: db.sql };
  };
  return {
    base: { logger: ctx.logger.child({ module: name }), meter: ctx.meter(name) },
    settings: ctx.config.settings[name] as Record<string, unknown>,
    currency: ctx.config.currency,
    embedded: !ctx.config.databaseUrls[name] && !ctx.config.mongoUrls[name],
    database,
    sql,
    port: <K extends ContractDef>(contract: K) => portFor(ctx, def, contract.name as ModuleName) as PortOf<K>,
    events: () => ctx.recorder(name),
    inbox: () => {
      if (!def.consumes?.length) throw new Error(`module ${name} consumes no events, so it has no inbox`);
      return createInbox(sql().sql, def.schema);
    },
    passwords: () => ctx.passwords(),
    tokens: ctx.tokens,
    shared: ctx.shared,
    overrides: ctx.overrides?.[name] ?? {},
  };
}

/** The port of a module `def` requires, here or remote; a port it does not declare is refused. */
function portFor(ctx: WiringContext, def: AnyDefinition, needed: ModuleName): unknown {
  if (!def.requires.includes(needed)) {
    throw new Error(
      `module ${def.name} asks for the ${needed} module's port without declaring it: add the ${needed} contract to its requires`,
    );
  }
  const port = ctx.ports.get(needed) ?? ctx.remote(needed);
  if (!port) {
    throw new Error(
      `module ${def.name} needs the ${needed} module: set ${needed.toUpperCase()}_SERVICE_URL, or host it here (add ${needed} to MODULES)`,
    );
  }
  return port;
}

/** Builds the hosted modules in start order (each after what it requires), publishing each one's port for the next. */
export async function buildModules(ctx: WiringContext): Promise<Map<ModuleName, AnyModuleInstance>> {
  const instances = new Map<ModuleName, AnyModuleInstance>();
  for (const name of ctx.config.modules) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const def = MODULE_DEFINITIONS[name] as any;
    const instance = (await def.create(def.wire(kernelFor(ctx, def)))) as AnyModuleInstance;
    instances.set(name, instance);
    ctx.ports.set(name, inProcessPort(def.contract, instance.implementation));
  }
  return instances;
}
