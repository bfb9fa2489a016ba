import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

/**
 * Why a rolling restart behind a gateway with a fixed list of replicas can
 * fail one POST (docs/topologies.md): when a replica closes its listener, a
 * connection the kernel has already completed but the process has not yet
 * accepted is reset, after the gateway wrote its request on it. nginx sees
 * "Connection reset by peer while reading response header" and, the request
 * having been sent, does not retry a POST. A connection the process accepted
 * before closing is answered. The server runs in a child process, so that it
 * can be kept from accepting while this one connects.
 */
const SERVER = `
const { createServer } = require('node:http');
const { existsSync } = require('node:fs');
const server = createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }));
process.on('message', (m) => {
  if (m.closeWhen) {
    // Busy, as a loaded replica's event loop is: nothing is accepted until the flag appears, then the listener closes.
    while (!existsSync(m.closeWhen));
    server.close();
  } else if (m.closeAfterAccept) {
    server.once('connection', () => { server.close(); process.send({ accepted: true }); });
  }
});
`;

const POST = 'POST /api/v1/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}';

let child: ChildProcess | undefined;
const dir = mkdtempSync(path.join(tmpdir(), 'toko-listener-close-'));
afterEach(() => {
  child?.kill('SIGKILL');
});
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

async function startServer(): Promise<number> {
  const file = path.join(dir, 'server.cjs');
  if (!existsSync(file)) writeFileSync(file, SERVER);
  child = fork(file, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const [{ port }] = (await once(child, 'message')) as [{ port: number }];
  return port;
}

/** What the server sent on a connection until it ended, and the error that ended it, if any. */
function outcome(socket: ReturnType<typeof connect>): Promise<{ text: string; error?: string }> {
  return new Promise((resolve) => {
    let text = '';
    let error: string | undefined;
    socket.on('data', (c: Buffer) => (text += c.toString()));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code));
    socket.on('close', () => resolve({ text, error }));
  });
}

describe('closing a listener', () => {
  it('resets a request sent on a connection the process had not yet accepted', async () => {
    const port = await startServer();
    const flag = path.join(dir, 'written');
    child!.send({ closeWhen: flag });
    const socket = connect(port, '127.0.0.1');
    const result = outcome(socket);
    // The kernel completes the connection while the server is busy; the POST is written on it, as the gateway does.
    await once(socket, 'connect');
    await new Promise<void>((resolve, reject) => socket.write(POST, (err) => (err ? reject(err) : resolve())));
    writeFileSync(flag, '');
    expect(await result).toEqual({ text: '', error: 'ECONNRESET' });
  });

  it('answers a request sent on a connection the process accepted before it closed', async () => {
    const port = await startServer();
    child!.send({ closeAfterAccept: true });
    const socket = connect(port, '127.0.0.1');
    const result = outcome(socket);
    await once(child!, 'message');
    socket.write(POST);
    const { text, error } = await result;
    expect(error).toBeUndefined();
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*\r\n\r\nok$/);
  });
});
