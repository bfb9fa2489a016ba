import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { noopMeter } from '../kit/meter.ts';
import { processSharedState } from '../kit/shared.ts';
import { notificationContract } from '../modules/notification/contract.ts';
import { orderModule } from '../modules/order/index.ts';
import { productContract } from '../modules/product/contract.ts';
import { userContract } from '../modules/user/contract.ts';
import { loadConfig } from './config.ts';
import { kernelFor, type WiringContext } from './wiring.ts';

const never = () => {
  throw new Error('not used here');
};
const context = (ports: Map<string, unknown>): WiringContext => ({
  config: loadConfig({}),
  logger: pino({ level: 'silent' }),
  databases: new Map(),
  ports,
  tokens: { issue: never, jwks: never },
  passwords: never,
  recorder: never,
  remote: () => undefined,
  meter: () => noopMeter,
  shared: processSharedState(),
});

describe("the kernel a module's wire is handed", () => {
  it('hands out the ports of the contracts the module requires, and refuses any other at start-up', () => {
    const users = { getUser: async () => undefined };
    const kernel = kernelFor(context(new Map<string, unknown>([['user', users]])), orderModule);
    expect(kernel.port(userContract)).toBe(users);
    expect(() => kernel.port(notificationContract)).toThrow(
      "module order asks for the notification module's port without declaring it: add the notification contract to its requires",
    );
    // Declared but neither hosted nor reachable: the variable to set.
    expect(() => kernel.port(productContract)).toThrow(
      /module order needs the product module: set PRODUCT_SERVICE_URL/,
    );
  });

  it('gives an inbox only to a module that consumes events', () => {
    expect(() => kernelFor(context(new Map()), orderModule).inbox()).toThrow('module order consumes no events');
  });
});
