import type { Logger } from 'pino';
import { inProcessPort } from '../adapters/inprocess/port.ts';
import type { MailTransport } from '../modules/notification/index.ts';
import type { orderContract } from '../modules/order/contract.ts';
import type { productContract } from '../modules/product/contract.ts';
import type { userContract } from '../modules/user/contract.ts';
import type { PasswordPool } from './auth/passwords.ts';
import type { Config, ModuleName } from './config.ts';
import type { PortOf } from './kit/contract.ts';
import type { TokenIssuer } from './kit/auth.ts';
import type { EventRecorder } from './kit/events.ts';
import type { Meter } from './kit/meter.ts';
import type { ModuleDatabase, ModuleInstance } from './kit/module.ts';
import { MODULE_DEFINITIONS } from './registry.ts';

export interface Ports {
  user?: PortOf<typeof userContract>;
  product?: PortOf<typeof productContract>;
  order?: PortOf<typeof orderContract>;
}

export interface WiringContext {
  config: Config;
  logger: Logger;
  databases: Map<ModuleName, ModuleDatabase>;
  ports: Ports;
  tokens: TokenIssuer;
  passwords: () => PasswordPool;
  recorder: (module: ModuleName) => EventRecorder;
  /** The port of a module another process serves, or undefined when none is configured. */
  remote: <K extends keyof Ports>(name: K) => Ports[K] | undefined;
  /** Each module's counters, labelled with its name. */
  meter: (module: ModuleName) => Meter;
  /** Replaces the notification module's configured mail transport (tests). */
  mailTransport?: MailTransport;
}

/** What every module is handed whatever it needs besides. */
interface Base {
  logger: Logger;
  meter: Meter;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModuleInstance = ModuleInstance<unknown, any>;

function sql(ctx: WiringContext, name: ModuleName) {
  const db = ctx.databases.get(name);
  if (db?.kind !== 'sql') throw new Error(`module ${name} needs a SQL database`);
  return { orm: db.orm, sql: db.sql };
}

/** A port of a module this process needs: in process when hosted here, over HTTP when its service URL is set. */
function port<K extends keyof Ports>(ctx: WiringContext, name: K, by: ModuleName): NonNullable<Ports[K]> {
  const p = ctx.ports[name] ?? ctx.remote(name);
  if (!p) {
    throw new Error(`module ${by} needs the ${name} module: set ${name.toUpperCase()}_SERVICE_URL, or host it here (add ${name} to MODULES)`);
  }
  return p as NonNullable<Ports[K]>;
}

/** Each module states its own needs as a type; this is the one place that meets them. */
const BUILDERS: { [K in ModuleName]: (ctx: WiringContext, base: Base) => Promise<AnyModuleInstance> } = {
  user: (ctx, base) =>
    MODULE_DEFINITIONS.user.create({
      ...base,
      ...sql(ctx, 'user'),
      passwords: ctx.passwords(),
      tokens: ctx.tokens,
      events: ctx.recorder('user'),
      login: ctx.config.login,
      admin: ctx.config.admin,
      cacheTtlMs: ctx.config.userCacheTtlMs,
    }),
  product: (ctx, base) =>
    MODULE_DEFINITIONS.product.create({
      ...base,
      database: ctx.databases.get('product')!,
      currency: ctx.config.currency,
      seedDemo: ctx.config.seedDemo,
      cacheTtlMs: ctx.config.productCacheTtlMs,
    }),
  order: (ctx, base) =>
    MODULE_DEFINITIONS.order.create({
      ...base,
      ...sql(ctx, 'order'),
      users: port(ctx, 'user', 'order'),
      products: port(ctx, 'product', 'order'),
      events: ctx.recorder('order'),
      currency: ctx.config.currency,
      settings: ctx.config.orders,
    }),
  notification: (ctx, base) =>
    MODULE_DEFINITIONS.notification.create({
      ...base,
      ...sql(ctx, 'notification'),
      users: port(ctx, 'user', 'notification'),
      locale: ctx.config.notify.locale,
      transport: ctx.config.notify.transport,
      transportOverride: ctx.mailTransport,
    }),
};

/** Builds the hosted modules in dependency order and publishes each one's port for the next. */
export async function buildModules(ctx: WiringContext): Promise<Map<ModuleName, AnyModuleInstance>> {
  const instances = new Map<ModuleName, AnyModuleInstance>();
  for (const name of ctx.config.modules) {
    const instance = await BUILDERS[name](ctx, { logger: ctx.logger.child({ module: name }), meter: ctx.meter(name) });
    instances.set(name, instance);
    const def = MODULE_DEFINITIONS[name];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    (ctx.ports as Record<string, unknown>)[name] = inProcessPort(def.contract as any, instance.implementation);
  }
  return instances;
}
