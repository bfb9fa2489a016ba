import { Socket, createServer, type AddressInfo, type Server } from 'node:net';

/**
 * A TCP hop in front of a server (a database, Redis) that a test can cut: `pass` forwards,
 * `refuse` closes every connection at once (the server is down), `blackhole`
 * accepts and never answers (a network partition: the worst case, where
 * only a bounded wait helps). `freeze` keeps every open connection open and
 * stops carrying bytes either way, as a database stopped with SIGSTOP does:
 * the pool's connections look alive and nothing they send is answered.
 * `delayMs(nth)` holds the nth connection it carries (from 0) that long before connecting it upstream.
 */
export class Hop {
  mode: 'pass' | 'refuse' | 'blackhole' = 'pass';
  private readonly sockets = new Set<Socket>();
  private readonly pairs = new Set<[Socket, Socket]>();
  private server: Server | undefined;
  private accepted = 0;
  constructor(
    private readonly upstream: { host: string; port: number },
    private readonly opts: { delayMs?: (nth: number) => number } = {},
  ) {}

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.mode === 'refuse') return void client.destroy();
      if (this.mode === 'blackhole') return;
      const server = new Socket();
      this.sockets.add(server);
      server.on('close', () => this.sockets.delete(server));
      server.on('error', () => client.destroy());
      client.on('close', () => server.destroy());
      const pair: [Socket, Socket] = [client, server];
      const connect = () =>
        server.connect(this.upstream.port, this.upstream.host, () => {
          client.pipe(server);
          server.pipe(client);
          this.pairs.add(pair);
        });
      const delay = this.opts.delayMs?.(this.accepted++) ?? 0;
      if (delay > 0) setTimeout(() => !client.destroyed && connect(), delay);
      else connect();
      client.on('close', () => this.pairs.delete(pair));
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  /** Drops every open connection: the pool's connections die as they would when the database goes away. */
  cut(mode: 'refuse' | 'blackhole'): void {
    this.mode = mode;
    for (const s of this.sockets) s.destroy();
  }

  /** Open connections stay open and carry nothing; new ones are accepted and never answered. */
  freeze(): void {
    this.mode = 'blackhole';
    for (const [client, server] of this.pairs) {
      client.unpipe(server);
      server.unpipe(client);
      client.pause();
      server.pause();
    }
  }

  /** Carries what waited meanwhile, and everything after it. */
  thaw(): void {
    this.mode = 'pass';
    for (const [client, server] of this.pairs) {
      client.pipe(server);
      server.pipe(client);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}
