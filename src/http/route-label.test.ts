import { describe, expect, it } from 'vitest';
import { QUEUES_ROUTE_LABEL, moduleOf } from './route-label.ts';

describe('the module a route is labelled with', () => {
  it("is the module whose definition declares the route, the one an internal or outbox route names, or the kernel's", () => {
    expect(moduleOf('/api/v1/users/:id')).toBe('user');
    expect(moduleOf('/api/v1/products')).toBe('product');
    expect(moduleOf('/api/v1/orders/:id/cancel')).toBe('order');
    expect(moduleOf('/api/v1/notifications')).toBe('notification');
    expect(moduleOf('/internal/v1/product/reserveStock')).toBe('product');
    expect(moduleOf('/api/v1/admin/events/order/:id/replay')).toBe('order');
    for (const route of [
      '/health',
      '/health/ready',
      '/metrics',
      '/docs',
      '/openapi.json',
      QUEUES_ROUTE_LABEL,
      'unmatched',
    ])
      expect(moduleOf(route), route).toBe('kernel');
  });
});
