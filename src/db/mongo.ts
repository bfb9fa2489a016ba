import { MikroORM } from '@mikro-orm/mongodb';
import type { Logger } from 'pino';
import type { BaseDeps, ModuleDefinition } from '../../kit/module.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyModule = ModuleDefinition<BaseDeps, any, any>;

/**
 * A module's MikroORM on MongoDB. The database is the URL's path (`toko`
 * when it has none). No implicit transactions: the stores are written for
 * single-document atomic updates, so a standalone server works.
 */
export async function openModuleMongo(
  mod: AnyModule,
  opts: { clientUrl: string; timeoutMs: number; logger: Logger },
): Promise<MikroORM> {
  if (!mod.mongoEntities?.length) throw new Error(`module ${mod.name} cannot use MongoDB`);
  const dbName = decodeURIComponent(new URL(opts.clientUrl).pathname.replace(/^\//, '')) || 'toko';
  const orm = await MikroORM.init({
    clientUrl: opts.clientUrl,
    dbName,
    entities: mod.mongoEntities,
    implicitTransactions: false,
    ensureIndexes: true,
    // The driver would wait 30 s for a server by default; a request waits this long, then gets 503.
    driverOptions: {
      serverSelectionTimeoutMS: opts.timeoutMs,
      connectTimeoutMS: opts.timeoutMs,
      waitQueueTimeoutMS: opts.timeoutMs,
      // A frozen server (SIGSTOP) accepts and never answers: without this a read waits until the OS gives up.
      socketTimeoutMS: opts.timeoutMs,
    },
    allowGlobalContext: false,
    discovery: { warnWhenNoEntities: false },
    debug: false,
  });
  opts.logger.info({ module: mod.name, dbName }, 'connected to MongoDB');
  return orm;
}
