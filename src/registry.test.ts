import { describe, expect, it } from 'vitest';
import { ENV_VARIABLES, loadConfig } from './config.ts';
import { orderModule } from '../modules/order/index.ts';
import {
  MODULE_DEFINITIONS,
  MODULE_NAMES,
  ROUTE_MODULES,
  TOKEN_ISSUER,
  identityProvider,
  startOrder,
  startWaves,
} from './registry.ts';

const defs = (requires: Record<string, string[]>) =>
  Object.fromEntries(Object.entries(requires).map(([n, r]) => [n, { requires: r }]));

describe('the module registry', () => {
  it('starts every module after the modules it requires', () => {
    const at = (m: string) => MODULE_NAMES.indexOf(m as never);
    for (const [name, def] of Object.entries(MODULE_DEFINITIONS))
      for (const r of def.requires) expect(at(r), `${name} after ${r}`).toBeLessThan(at(name));
    expect(startOrder(defs({ billing: ['ledger'], ledger: [], shop: ['billing'] }))).toEqual([
      'ledger',
      'billing',
      'shop',
    ]);
  });

  it('refuses a requirement that is missing or circular', () => {
    expect(() => startOrder(defs({ a: ['ghost'] }))).toThrow(/a requires ghost/);
    expect(() => startOrder(defs({ a: ['b'], b: ['a'], c: [] }))).toThrow(/circle: a, b/);
  });

  it('starts services in waves: the token issuer, then whatever needs only what has started', () => {
    const waves = startWaves(MODULE_DEFINITIONS, TOKEN_ISSUER);
    const waveOf = (m: string) => waves.findIndex((w) => w.includes(m));
    expect(waves.flat().sort()).toEqual([...MODULE_NAMES].sort());
    expect(waves[0]).toEqual([TOKEN_ISSUER]);
    for (const [name, def] of Object.entries(MODULE_DEFINITIONS)) {
      const needs = [...def.requires, ...(name === TOKEN_ISSUER ? [] : [TOKEN_ISSUER])];
      for (const r of needs) expect(waveOf(r), `${name} starts after ${r}`).toBeLessThan(waveOf(name));
      // As early as it can: in the wave right after the last one holding something it needs.
      expect(waveOf(name), name).toBe(Math.max(-1, ...needs.map(waveOf)) + 1);
    }
    expect(startWaves(defs({ user: [], a: [], b: ['a'] }), 'user')).toEqual([['user'], ['a'], ['b']]);
  });

  it("names each module's database and service variables after it", () => {
    for (const m of MODULE_NAMES)
      expect(ENV_VARIABLES).toEqual(
        expect.arrayContaining([`${m.toUpperCase()}_DATABASE_URL`, `${m.toUpperCase()}_SERVICE_URL`]),
      );
    const c = loadConfig({
      MODULES: 'order',
      ORDER_DATABASE_URL: 'postgres://db/orders',
      PRODUCT_SERVICE_URL: 'http://product:3000/',
      ORDER_SERVICE_URL: 'http://ignored',
    });
    expect(c.databaseUrls.order).toBe('postgres://db/orders');
    expect(c.serviceUrls).toEqual({ product: 'http://product:3000' });
    expect(() => loadConfig({ USER_SERVICE_URL: 'ftp://nope' })).toThrow(/USER_SERVICE_URL: expected an http/);
  });

  it('keeps the contracts a module requires by their modules’ names', () => {
    expect(orderModule.requires).toEqual(['user', 'product']);
  });

  it('finds the token issuer by the identity capability a module declares, and refuses none or two', () => {
    expect(TOKEN_ISSUER).toBe('user');
    const identity = () => ({}) as never;
    expect(identityProvider({ a: {}, accounts: { provides: { identity } } })).toBe('accounts');
    expect(() => identityProvider({ a: {}, b: { provides: {} } })).toThrow(/provides\.identity.*none does/);
    expect(() => identityProvider({ a: { provides: { identity } }, b: { provides: { identity } } })).toThrow(
      /a and b do/,
    );
  });

  it("knows each public route template's module from the module's own definitions", () => {
    for (const [name, def] of Object.entries(MODULE_DEFINITIONS))
      for (const r of def.routes) expect(ROUTE_MODULES.get(r.path), r.path).toBe(name);
    expect(ROUTE_MODULES.get('/api/v1/orders/:id')).toBe('order');
    expect(ROUTE_MODULES.has('/health/ready')).toBe(false);
  });
});
