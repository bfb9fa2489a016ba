import { defineModule, type BaseDeps, type ModuleDatabase } from '../../src/kit/module.ts';
import { productContract } from './contract.ts';
import { productMigrations } from './migrations/index.ts';
import { ProductDocumentSchema } from './product.document.ts';
import { ProductEntity } from './product.entity.ts';
import { productRoutes, type ProductRuntime } from './product.routes.ts';
import { ProductService } from './product.service.ts';
import { MongoProductStore } from './stores/mongo.ts';
import { SqlProductStore } from './stores/sql.ts';

export interface ProductDeps extends BaseDeps {
  database: ModuleDatabase;
  /** ISO 4217 code of the shop's single currency. */
  currency: string;
  /** Load the demo catalogue at start-up when the catalogue is empty. */
  seedDemo: boolean;
}

export const productModule = defineModule<ProductDeps, ProductRuntime, typeof productContract>({
  name: 'product',
  schema: 'products',
  contract: productContract,
  requires: [],
  entities: [ProductEntity],
  mongoEntities: [ProductDocumentSchema],
  migrations: productMigrations,
  routes: productRoutes,
  async create(deps) {
    const store =
      deps.database.kind === 'mongo' ? new MongoProductStore(deps.database.orm, deps.currency) : new SqlProductStore(deps.database.orm, deps.currency);
    const service = new ProductService(store, deps.currency, deps.logger);
    return {
      runtime: { service },
      implementation: {
        getProducts: ({ ids }) => service.snapshots(ids),
        reserveStock: ({ reservationId, items }) => service.reserve(reservationId, items),
        releaseStock: ({ reservationId }) => service.release(reservationId),
      },
      start: async () => {
        if (deps.seedDemo && (await service.count()) === 0) await service.seedDemo();
      },
      seed: () => service.seedDemo(),
    };
  },
});
