import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract, defineEvent, subscribe, type ContractDef } from '../../kit/contract.ts';
import type { EventHandler } from '../../kit/events.ts';
import { EVENT_DEFINITIONS, EVENT_ROUTES, MODULE_DEFINITIONS } from '../registry.ts';
import { eventDefinitions, eventRoutes, routingProblems, subjectOf } from './routing.ts';

const shop = defineContract({
  name: 'shop',
  methods: {},
  events: {
    'shop.opened': defineEvent(z.object({ shopId: z.string() }), 'shopId'),
    'shop.closed': defineEvent(z.object({ shopId: z.string() }), 'shopId'),
  },
  errors: [],
});
const handler: EventHandler = async () => undefined;

describe('event routing', () => {
  it('routes each subscribed type to its consumers and knows every published type', () => {
    const modules = {
      shop: { contract: shop },
      audit: { contract: { ...shop, name: 'audit', events: {} }, consumes: [subscribe(shop, ['shop.opened'])] },
    };
    expect(eventRoutes(modules)).toEqual({ 'shop.opened': ['audit'] });
    expect(Object.keys(eventDefinitions(modules))).toEqual(['shop.opened', 'shop.closed']);
  });

  it('refuses a subscription to a type the contract does not publish, or to a contract that is not a module here', () => {
    // The type system refuses both already; the registry checks again for code that got past it.
    const typo = { contract: shop, types: ['shop.opend'] };
    expect(() =>
      eventRoutes({ shop: { contract: shop }, audit: { contract: shop as ContractDef, consumes: [typo] } }),
    ).toThrow('module audit consumes shop.opend, which the shop contract does not publish');
    expect(() =>
      eventRoutes({ audit: { contract: shop, consumes: [subscribe({ ...shop }, ['shop.opened'])] } }),
    ).toThrow(/consumes events of shop, which is not a module of this build/);
  });

  it('names a hosted consumer without a handler for a routed type, and a handler for a type nobody publishes or it does not consume', () => {
    const routes = { 'shop.opened': ['audit'], 'shop.closed': ['audit'] };
    const published = eventDefinitions({ shop: { contract: shop } });
    expect(
      routingProblems(routes, published, new Map([['audit', { 'shop.opened': handler, 'shop.closed': handler }]])),
    ).toEqual([]);
    expect(
      routingProblems(routes, published, new Map([['audit', { 'shop.opened': handler, 'shop.sold': handler }]])),
    ).toEqual([
      'module audit consumes shop.closed but has no handler for it',
      'module audit has a handler for shop.sold, which no module publishes',
    ]);
    expect(
      routingProblems(
        { 'shop.opened': ['audit'] },
        published,
        new Map([['audit', { 'shop.opened': handler, 'shop.closed': handler }]]),
      ),
    ).toEqual(['module audit has a handler for shop.closed but does not list it in consumes']);
    expect(routingProblems(routes, published, new Map([['audit', undefined]]))).toHaveLength(2);
  });

  it('holds for this build: every consumer’s declared types have handlers and the ordering keys are payload fields', async () => {
    expect(EVENT_ROUTES).toEqual({
      'user.registered': ['notification'],
      'order.confirmed': ['notification'],
      'order.cancelled': ['notification'],
    });
    for (const [type, def] of Object.entries(EVENT_DEFINITIONS)) {
      expect(Object.keys((def.payload as z.ZodObject).shape), type).toContain(def.orderingKey);
    }
    expect((MODULE_DEFINITIONS.notification.consumes ?? []).flatMap((s) => s.types)).toEqual([
      'user.registered',
      'order.confirmed',
      'order.cancelled',
    ]);
  });

  it('orders by the producer and the declared key, and falls back to the event itself', () => {
    const def = shop.events['shop.opened'];
    expect(subjectOf('shop', def, 'e1', { shopId: 's9' })).toBe('shop:s9');
    expect(subjectOf('shop', def, 'e1', { other: 1 })).toBe('e1');
    expect(subjectOf('shop', undefined, 'e2', { shopId: 's9' })).toBe('e2');
  });
});
