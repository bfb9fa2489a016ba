import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineContract } from '../../kit/contract.ts';
import { defineError, ValidationFailed } from '../../kit/errors.ts';
import { inProcessPort } from './port.ts';

class ThingNotFound extends defineError('THING.NOT_FOUND', 404, 'Thing not found') {}

const contract = defineContract({
  name: 'thing',
  methods: {
    getThing: {
      input: z.object({ id: z.string().min(1) }),
      output: z.object({ id: z.string(), price: z.number().int() }),
      idempotent: true,
    },
  },
  events: {},
  errors: [ThingNotFound],
});

describe('inProcessPort', () => {
  const calls: unknown[] = [];
  const port = inProcessPort(contract, {
    getThing: async (input) => {
      calls.push(input);
      if (input.id === 'missing') throw new ThingNotFound('no such thing', { id: input.id });
      // The extra field must not leak past the output schema.
      return { id: input.id, price: 1500000, secret: 'x' } as never;
    },
  });

  it('calls the implementation with parsed input and returns output shaped by the schema', async () => {
    await expect(port.getThing({ id: 'a' })).resolves.toEqual({ id: 'a', price: 1500000 });
    expect(calls).toEqual([{ id: 'a' }]);
  });

  it('refuses input the contract does not accept before the implementation runs', async () => {
    calls.length = 0;
    const err = await port.getThing({ id: '' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationFailed);
    expect((err as ValidationFailed).errors).toEqual([{ path: 'id', message: expect.any(String) }]);
    expect(calls).toEqual([]);
  });

  it('lets typed errors through as the same class', async () => {
    const err = await port.getThing({ id: 'missing' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ThingNotFound);
    expect(err).toMatchObject({ code: 'THING.NOT_FOUND', status: 404, extras: { id: 'missing' } });
  });
});
