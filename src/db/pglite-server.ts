import { createServer, type Server, type Socket } from 'node:net';
import type { PGlite } from '@electric-sql/pglite';
import type { Logger } from 'pino';

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
/** Messages after which the backend answers: a whole unit of work for one connection. */
const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const FLUSH = 0x48; // 'H'
const TERMINATE = 0x58; // 'X'
/** Messages that name a prepared statement or portal. */
const PARSE = 0x50; // 'P'
const BIND = 0x42; // 'B'
const DESCRIBE = 0x44; // 'D'
const CLOSE = 0x43; // 'C'
const EXECUTE = 0x45; // 'E'

interface Unit {
  conn: Connection;
  bytes: Uint8Array;
}

interface Connection {
  id: number;
  socket: Socket;
  buffer: Buffer;
  started: boolean;
  /** Messages received since the last unit boundary. */
  pending: Buffer[];
  closed: boolean;
  /** Prepared statement names this connection created, as the session knows them (prefixed). */
  statements: Set<string>;
}

export interface PgliteServerOptions {
  db: PGlite;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxConnections: number;
  logger: Logger;
}

/**
 * Serves one PGlite session to any number of PostgreSQL wire-protocol
 * clients (the `pg` driver, psql), as a PostgreSQL server would, over TCP.
 *
 * PGlite has a single session, so clients take turns. The unit of a turn is
 * what the client sends up to a point where the backend answers and its
 * state is settled: a simple Query, or an extended-protocol batch up to its
 * Sync (Parse/Bind/Describe/Execute/Sync). A connection that leaves the
 * session inside a transaction keeps its turn until the transaction ends
 * (others wait), and is rolled back if it disconnects. This is what
 * @electric-sql/pglite-socket does per message — which lets another
 * connection's Parse or BEGIN land between a Parse and its Bind (wrong
 * statement bound, "unnamed prepared statement does not exist"), and a
 * failed message stop its queue for good (electric-sql/pglite#1046).
 *
 * Named prepared statements and portals are per connection in PostgreSQL
 * but would all live in the one session here, so the server renames them
 * per connection (`c<id>_<name>`) and deallocates a connection's statements
 * when it goes: each client prepares its statements once, as it would on a
 * server, and two clients using the same name never collide.
 */
export class PgliteServer {
  private readonly o: Required<Omit<PgliteServerOptions, 'db' | 'logger'>> & PgliteServerOptions;
  private server: Server | undefined;
  private readonly queue: Unit[] = [];
  private readonly connections = new Set<Connection>();
  /** The connection whose transaction is open in the session; only its units run until it ends. */
  private owner: Connection | undefined;
  private running = false;
  private nextId = 1;

  constructor(opts: PgliteServerOptions) {
    this.o = { host: '127.0.0.1', port: 0, ...opts };
    if (this.o.maxConnections < 1) throw new Error('maxConnections must be at least 1');
  }

  /** Listens; resolves with the port. */
  async start(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    server.maxConnections = this.o.maxConnections;
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => resolve());
    });
    return (server.address() as { port: number }).port;
  }

  /** Stops listening and drops every client; the session is left to its owner (PGlite.close()). */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const c of this.connections) c.socket.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    socket.setNoDelay(true);
    const conn: Connection = {
      id: this.nextId++,
      socket,
      buffer: Buffer.alloc(0),
      started: false,
      pending: [],
      closed: false,
      statements: new Set(),
    };
    this.connections.add(conn);
    socket.on('data', (data: Buffer) => this.receive(conn, data));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.disconnected(conn));
  }

  private receive(conn: Connection, data: Buffer): void {
    conn.buffer = conn.buffer.length ? Buffer.concat([conn.buffer, data]) : data;
    for (;;) {
      if (!conn.started) {
        if (conn.buffer.length < 8) return;
        const length = conn.buffer.readInt32BE(0);
        if (conn.buffer.length < length) return;
        const code = conn.buffer.readInt32BE(4);
        const message = conn.buffer.subarray(0, length);
        conn.buffer = conn.buffer.subarray(length);
        if (code === SSL_REQUEST) {
          conn.socket.write('N');
        } else if (code === CANCEL_REQUEST) {
          conn.socket.destroy();
          return;
        } else if (code === PROTOCOL_3) {
          conn.started = true;
          this.enqueue(conn, [message]);
        } else {
          conn.socket.destroy();
          return;
        }
        continue;
      }
      if (conn.buffer.length < 5) return;
      const length = 1 + conn.buffer.readInt32BE(1);
      if (conn.buffer.length < length) return;
      const type = conn.buffer[0]!;
      const message = conn.buffer.subarray(0, length);
      conn.buffer = conn.buffer.subarray(length);
      if (type === TERMINATE) {
        conn.socket.end();
        return;
      }
      conn.pending.push(
        type === PARSE || type === BIND || type === DESCRIBE || type === CLOSE || type === EXECUTE
          ? renamed(conn, message)
          : message,
      );
      if (type === SYNC || type === QUERY || type === FLUSH) {
        this.enqueue(conn, conn.pending);
        conn.pending = [];
      }
    }
  }

  private enqueue(conn: Connection, messages: Buffer[]): void {
    this.queue.push({ conn, bytes: messages.length === 1 ? messages[0]! : Buffer.concat(messages) });
    void this.drain();
  }

  /** The next unit allowed to run: the transaction owner's, or anyone's in arrival order. */
  private next(): Unit | undefined {
    if (!this.owner) return this.queue.shift();
    const i = this.queue.findIndex((u) => u.conn === this.owner);
    return i < 0 ? undefined : this.queue.splice(i, 1)[0];
  }

  private async drain(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (let unit = this.next(); unit; unit = this.next()) {
        if (unit.conn.closed) continue;
        const { socket } = unit.conn;
        try {
          await this.o.db.runExclusive(() =>
            this.o.db.execProtocolRawStream(unit.bytes, {
              onRawData: (chunk: Uint8Array) => {
                if (!socket.destroyed) socket.write(chunk);
              },
            }),
          );
        } catch (err) {
          // The session could not take this unit: the client cannot be answered consistently, so it is cut off.
          this.o.logger.error(
            { err, connection: unit.conn.id },
            'embedded PostgreSQL failed a request; closing that connection',
          );
          socket.destroy();
        }
        this.owner = this.o.db.isInTransaction() ? unit.conn : undefined;
        if (this.owner?.closed) await this.rollbackFor(this.owner);
      }
    } finally {
      this.running = false;
    }
  }

  private disconnected(conn: Connection): void {
    conn.closed = true;
    this.connections.delete(conn);
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.conn === conn) this.queue.splice(i, 1);
    if (this.owner === conn && !this.running) void this.rollbackFor(conn).then(() => this.drain());
    this.forgetStatements(conn);
  }

  /** Drops a closed connection's prepared statements from the session (after the units before them). */
  private forgetStatements(conn: Connection): void {
    if (conn.statements.size === 0) return;
    const names = [...conn.statements];
    conn.statements.clear();
    void (async () => {
      for (const name of names) {
        await this.o.db
          .exec(`DEALLOCATE "${name.replace(/"/g, '""')}"`)
          .catch((err: unknown) =>
            this.o.logger.error({ err }, 'embedded PostgreSQL could not drop a statement of a closed connection'),
          );
      }
    })();
  }

  /** A connection went away inside its transaction: end it, so the session serves the others again. */
  private async rollbackFor(conn: Connection): Promise<void> {
    if (this.owner !== conn) return;
    try {
      if (this.o.db.isInTransaction()) await this.o.db.exec('ROLLBACK');
    } catch (err) {
      this.o.logger.error({ err }, 'embedded PostgreSQL could not roll back the transaction of a closed connection');
    }
    this.owner = undefined;
  }
}

/** A C string at `at`: its text and the offset after its terminating zero. */
function cstring(buf: Buffer, at: number): [string, number] {
  const end = buf.indexOf(0, at);
  return [buf.toString('utf8', at, end), end + 1];
}

/**
 * The message with its statement and portal names made this connection's
 * own (empty names, the unnamed statement and portal, stay as they are).
 */
function renamed(conn: Connection, message: Buffer): Buffer {
  const type = message[0]!;
  const own = (name: string) => (name === '' ? '' : `c${conn.id}_${name}`);
  const parts: Buffer[] = [];
  let at = 5;
  const name = (record: boolean) => {
    const [text, next] = cstring(message, at);
    const mine = own(text);
    if (record && mine) conn.statements.add(mine);
    parts.push(Buffer.from(`${mine}\0`, 'utf8'));
    at = next;
  };
  if (type === PARSE) name(true);
  else if (type === BIND) {
    name(false); // portal
    name(false); // statement
  } else if (type === DESCRIBE || type === CLOSE) {
    const kind = message[at];
    parts.push(message.subarray(at, at + 1));
    at += 1;
    if (type === CLOSE && kind === 0x53) conn.statements.delete(own(cstring(message, at)[0]));
    name(false);
  } else if (type === EXECUTE) name(false);
  const body = Buffer.concat([...parts, message.subarray(at)]);
  const out = Buffer.alloc(5 + body.length);
  out[0] = type;
  out.writeInt32BE(4 + body.length, 1);
  body.copy(out, 5);
  return out;
}
