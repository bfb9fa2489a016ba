import type { Logger } from 'pino';
import { inProcessPort } from '../adapters/inprocess/port.ts';
import type { PasswordPool } from './auth/passwords.ts';
import type { Config, ModuleName } from './config.ts';
import type { ContractDef, PortOf } from '../kit/contract.ts';
import type { TokenIssuer } from '../kit/auth.ts';
import type { EventRecorder } from '../kit/events.ts';
import type { Meter } from '../kit/meter.ts';
import type { ModuleDatabase, ModuleInstance, ModuleKernel } from '../kit/module.ts';
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
  /** What tests replace, per module (`{ notification: { transport } }`). */
  overrides?: Partial<Record<ModuleName, Record<string, unknown>>>;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModuleInstance = ModuleInstance<unknown, any>;

/** What the kernel offers one module: each module's `wire` takes what it needs from here. */
function kernelFor(ctx: WiringContext, name: ModuleName): ModuleKernel {
  const database = () => {
    const db = ctx.databases.get(name);
    if (!db) throw new Error(`module ${name} has no database`);
    return db;
  };
  return {
    base: { logger: ctx.logger.child({ module: name }), meter: ctx.meter(name) },
    settings: ctx.config.settings[name] as Record<string, unknown>,
    currency: ctx.config.currency,
    embedded: !ctx.config.databaseUrls[name] && !ctx.config.mongoUrls[name],
    database,
    sql: () => {
      const db = database();
      if (db.kind !== 'sql') throw new Error(`module ${name} needs a SQL database`);
      return { orm: db.orm, sql: db.sql };
    },
    port: <K extends ContractDef>(contract: K) => {
      const needed = contract.name as ModuleName;
      const p = ctx.ports.get(needed) ?? ctx.remote(needed);
      if (!p) {
        throw new Error(
          `module ${name} needs the ${needed} module: set ${needed.toUpperCase()}_SERVICE_URL, or host it here (add ${needed} to MODULES)`,
        );
      }
      return p as PortOf<K>;
    },
    events: () => ctx.recorder(name),
    passwords: () => ctx.passwords(),
    tokens: ctx.tokens,
    overrides: ctx.overrides?.[name] ?? {},
  };
}

/** Builds the hosted modules in start order (each after what it requires), publishing each one's port for the next. */
export async function buildModules(ctx: WiringContext): Promise<Map<ModuleName, AnyModuleInstance>> {
  const instances = new Map<ModuleName, AnyModuleInstance>();
  for (const name of ctx.config.modules) {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const def = MODULE_DEFINITIONS[name] as any;
    const instance = (await def.create(def.wire(kernelFor(ctx, name)))) as AnyModuleInstance;
    instances.set(name, instance);
    ctx.ports.set(name, inProcessPort(def.contract, instance.implementation));
  }
  return instances;
}
