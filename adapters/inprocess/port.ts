import type { ContractDef, ImplementationOf, PortOf } from '../../kit/contract.ts';
import { parseOrThrow } from '../../kit/validation.ts';

/**
 * A contract's port as a direct call into the implementation. Input and
 * output go through the contract's schemas here too, so a caller sees the
 * same behaviour in process as over HTTP.
 */
export function inProcessPort<C extends ContractDef>(contract: C, implementation: ImplementationOf<C>): PortOf<C> {
  const port: Record<string, (input: unknown) => Promise<unknown>> = {};
  for (const [name, method] of Object.entries(contract.methods)) {
    const impl = (implementation as Record<string, (input: unknown) => Promise<unknown>>)[name];
    if (!impl) throw new Error(`${contract.name}: no implementation for ${name}`);
    port[name] = async (input) => method.output.parse(await impl(parseOrThrow(method.input, input)));
  }
  return port as PortOf<C>;
}
