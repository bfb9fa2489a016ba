import type { Server, ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';

/**
 * Stops a server accepting connections without ending any it has: resolves
 * once they have all ended. Node's own `server.close()` also destroys every
 * kept-alive connection waiting for its next request, and a gateway may be
 * sending one on it at that moment: a POST that met that is not retried. Here
 * every answer from now on ends its connection (`Connection: close`, so the
 * gateway does not send another on it), and a connection left idle is ended by
 * its client (the gateway drops idle ones after 4 s) or by the server's
 * keep-alive timeout (5 s). New connections are refused, which the gateway
 * retries on another replica whatever the method.
 */
export function stopListening(server: Server): Promise<void> {
  server.prependListener('request', (_req, res: ServerResponse) => res.setHeader('connection', 'close'));
  return new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
}
