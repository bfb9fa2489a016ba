import { once } from 'node:events';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { stopListening } from './stop-listening.ts';

/** An answer, and the connection it came on. */
interface Answer {
  status: number;
  connection: string | undefined;
  body: string;
  socket: Socket;
}

function send(port: number, agent: Agent, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/api/v1/orders', method, agent }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode!, connection: res.headers.connection, body, socket: req.socket! }),
      );
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

let server: Server | undefined;
let agent: Agent | undefined;
afterEach(() => {
  agent?.destroy();
  server?.closeAllConnections();
  server?.close();
});

/** A server that answers `ok`; its kept-alive connections stay open a minute unless something ends them. */
async function serve(): Promise<number> {
  server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

describe('stopping a server listening', () => {
  it('answers a POST sent on a kept-alive connection just after the listener closed, and ends that connection', async () => {
    const port = await serve();
    // The gateway's pool: one connection, kept alive after a first answer.
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const first = await send(port, agent);
    expect(first.connection).toBe('keep-alive');
    const stopped = stopListening(server!);
    const second = await send(port, agent, 'POST');
    expect(second.socket).toBe(first.socket);
    expect(second).toMatchObject({ status: 200, connection: 'close', body: 'ok' });
    // Every connection has ended: the listener's close completes.
    await stopped;
    await expect(send(port, new Agent())).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it("is what Node's own close gets wrong: it ends the kept-alive connection, and the POST meant for it fails", async () => {
    const port = await serve();
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    await send(port, agent);
    server!.close();
    await expect(send(port, agent, 'POST')).rejects.toThrow();
  });
});
