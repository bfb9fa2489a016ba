import { migrations } from '../../../kit/migrations.ts';

/** Every committed migration of the product module's SQL store, oldest first. */
export const productMigrations = migrations({
  Migration20261126010000_products: () => import('./Migration20261126010000_products.ts'),
  Migration20261203000000_reserve_function: () => import('./Migration20261203000000_reserve_function.ts'),
});
