import { z } from 'zod';
import { int, optionalBool } from '../../kit/env.ts';
import { defineModule, type BaseDeps, type ModuleDatabase } from '../../kit/module.ts';
import type { Invalidations } from '../../kit/shared.ts';
import { OutOfStock, ProductNotFound, ReservationClosed, productContract } from './contract.ts';
import { productMigrations } from './migrations/index.ts';
import { ProductDocumentSchema } from './product.document.ts';
import { ProductEntity } from './product.entity.ts';
import { productRoutes, type ProductRuntime } from './product.routes.ts';
import { ProductService } from './product.service.ts';
import { SqlProductStore } from './stores/sql.ts';
import { SCHEMA } from './schema.ts';

export interface ProductDeps extends BaseDeps {
  database: ModuleDatabase;
  /** ISO 4217 code of the shop's single currency. */
  currency: string;
  /** Load the demo catalogue at start-up when the catalogue is empty. */
  seedDemo: boolean;
  /** How long a product read by id may be served from memory (0: never). */
  cacheTtlMs: number;
  /** Cache drops shared with the other replicas. */
  invalidations: Invalidations;
}

const productSettings = z.object({
  PRODUCT_CACHE_TTL_MS: int(0, 60_000, 1000).meta({
    description:
      'products by id and catalogue pages (`GET /api/v1/products…`) may be answered from memory for this long; every write drops what it touched at once in its process and, with `REDIS_URL`, in every other replica within milliseconds, so this is only the backstop for a drop that did not arrive. `0` turns the cache off',
  }),
  SEED_DEMO: optionalBool.meta({
    description:
      'load the demo catalogue at start-up when the catalogue is empty (any store, any topology); `false` for a shop that starts empty',
    default: '`true`',
  }),
});

/** The routes' runtime, and whether start-up loads the demo catalogue. */
type ProductModuleRuntime = ProductRuntime & { seedDemo: boolean };

export const productModule = defineModule<
  ProductDeps,
  ProductModuleRuntime,
  typeof productContract,
  typeof productSettings
>({
  name: 'product',
  schema: SCHEMA,
  contract: productContract,
  requires: [],
  entities: [ProductEntity],
  mongoEntities: [ProductDocumentSchema],
  migrations: productMigrations,
  routes: productRoutes,
  seed: {
    load: (runtime) => runtime.service.seedDemo(),
    // Only into an empty catalogue: once a shop has products, start-up leaves them alone (`npm run seed` adds what is missing).
    atStart: async (runtime) => runtime.seedDemo && (await runtime.service.count()) === 0,
  },
  deploy: { store: 'mongo', env: { SEED_DEMO: '"true"' } },
  settings: productSettings,
  wire: (k) => ({
    ...k.base,
    database: k.database(),
    currency: k.currency,
    // An empty catalogue gets the demo products in every topology and store unless told not to (SEED_DEMO=false).
    seedDemo: k.settings.SEED_DEMO ?? true,
    cacheTtlMs: k.settings.PRODUCT_CACHE_TTL_MS,
    invalidations: k.shared.invalidations,
  }),
  async create(deps) {
    // The MongoDB store (and its driver) is loaded only when products live there.
    const store =
      deps.database.kind === 'mongo'
        ? new (await import('./stores/mongo.ts')).MongoProductStore(deps.database.orm, deps.currency)
        : new SqlProductStore(deps.database.orm, deps.database.sql, deps.currency);
    const service = new ProductService(store, deps.currency, deps.logger, {
      cacheTtlMs: deps.cacheTtlMs,
      invalidations: deps.invalidations,
    });
    const reservations = deps.meter.counter({
      name: 'toko_stock_reservations_total',
      help: 'Stock reservation requests by result (reserved, out_of_stock, not_found, closed)',
      labelNames: ['result'],
    });
    const releases = deps.meter.counter({
      name: 'toko_stock_releases_total',
      help: 'Stock release requests by result (released, nothing_held)',
      labelNames: ['result'],
    });
    const RESULTS = new Map<unknown, string>([
      [OutOfStock, 'out_of_stock'],
      [ProductNotFound, 'not_found'],
      [ReservationClosed, 'closed'],
    ]);
    return {
      runtime: { service, seedDemo: deps.seedDemo },
      implementation: {
        getProducts: ({ ids }) => service.snapshots(ids),
        getPrices: ({ ids }) => service.prices(ids),
        reserveStock: async ({ reservationId, items }) => {
          try {
            const reservation = await service.reserve(reservationId, items);
            reservations.inc({ result: 'reserved' });
            return reservation;
          } catch (err) {
            const result = RESULTS.get((err as object)?.constructor);
            if (result) reservations.inc({ result });
            throw err;
          }
        },
        releaseStock: async ({ reservationId }) => {
          const outcome = await service.release(reservationId);
          releases.inc({ result: outcome.released ? 'released' : 'nothing_held' });
          return outcome;
        },
      },
    };
  },
});
