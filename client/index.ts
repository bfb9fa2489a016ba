/**
 * A typed client for the toko API: openapi-fetch over the types
 * openapi-typescript generates from /openapi.json (client/schema.ts, made by
 * `npm run generate:client`). Paths, parameters, bodies, answers and problem
 * documents are all checked by the compiler:
 *
 *   const toko = createTokoClient('http://localhost:3000', { token: () => session.token });
 *   const { data, error } = await toko.POST('/api/v1/orders', { body: { items: [{ productId, quantity: 2 }] } });
 *   if (error?.code === 'ORDER.OUT_OF_STOCK') console.log(error.items);
 */
import createClient, { type Client } from 'openapi-fetch';
// `.js`: the built package's declarations name the built file (a type-only import, erased from the JavaScript).
import type { components, operations, paths } from './schema.js';

export type { components, operations, paths };
/** The API's named schemas: `Schemas['Order']`, `Schemas['Problem.ORDER.OUT_OF_STOCK']`... */
export type Schemas = components['schemas'];
export type TokoClient = Client<paths>;

export interface TokoClientOptions {
  /** The bearer token to send, read before every request (undefined: none). */
  token?: () => string | undefined;
  /** Another fetch (tests, retries, a proxy agent). */
  fetch?: typeof globalThis.fetch;
}

export function createTokoClient(baseUrl: string, options: TokoClientOptions = {}): TokoClient {
  const client = createClient<paths>({ baseUrl, ...(options.fetch ? { fetch: options.fetch } : {}) });
  client.use({
    onRequest({ request }) {
      const token = options.token?.();
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      return request;
    },
  });
  return client;
}
