import type { MikroORM as MongoORM } from '@mikro-orm/mongodb';
import pino from 'pino';
import { afterAll, beforeAll, describe } from 'vitest';
import { openModuleMongo } from '../../../test/helpers/kernel.ts';
import { sqlDatabase, startTestApp, type TestApp } from '../../../test/helpers/app.ts';
import { productModule } from '../index.ts';
import { MongoProductStore } from './mongo.ts';
import { SqlProductStore } from './sql.ts';
import type { ProductStore } from './store.ts';
import { productStoreSuite } from './store.suite.ts';

describe('SqlProductStore', () => {
  let app: TestApp;
  let store: ProductStore;
  beforeAll(async () => {
    app = await startTestApp({ MODULES: 'user,product' });
    const db = sqlDatabase(app.server, 'product');
    store = new SqlProductStore(db.orm, db.sql, 'IDR');
  });
  afterAll(() => app?.close());
  productStoreSuite(() => store);
});

const mongoUrl = process.env.TEST_MONGODB_URL ?? process.env.PRODUCT_MONGODB_URL;
if (!mongoUrl) {
  console.warn('MongoProductStore suite skipped: set TEST_MONGODB_URL (or PRODUCT_MONGODB_URL) to a MongoDB to run it');
}

describe.skipIf(!mongoUrl)('MongoProductStore', () => {
  let orm: MongoORM;
  let store: ProductStore;
  beforeAll(async () => {
    const url = new URL(mongoUrl!);
    url.pathname = `/toko_test_${Date.now().toString(36)}`;
    orm = await openModuleMongo(productModule, {
      clientUrl: url.toString(),
      timeoutMs: 2000,
      logger: pino({ level: 'silent' }),
    });
    store = new MongoProductStore(orm, 'IDR');
  });
  afterAll(async () => {
    await orm?.em.getConnection().getDb().dropDatabase();
    await orm?.close(true);
  });
  productStoreSuite(() => store);
});
