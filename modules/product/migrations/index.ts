import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261126010000_products } from './Migration20261126010000_products.ts';

/** Every committed migration of the product module's SQL store, oldest first. */
export const productMigrations: MigrationObject[] = [
  { name: 'Migration20261126010000_products', class: Migration20261126010000_products },
];
