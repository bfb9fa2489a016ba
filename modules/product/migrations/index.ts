import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126010000_products } from './Migration20261126010000_products.ts';
import { Migration20261203000000_reserve_function } from './Migration20261203000000_reserve_function.ts';

/** Every committed migration of the product module's SQL store, oldest first. */
export const productMigrations: MigrationObject[] = [
  { name: 'Migration20261126010000_products', class: Migration20261126010000_products },
  { name: 'Migration20261203000000_reserve_function', class: Migration20261203000000_reserve_function },
];
