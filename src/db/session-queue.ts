import type { PGlite } from '@electric-sql/pglite';

/**
 * Serialises the PostgreSQL wire messages of many client connections onto
 * PGlite's single session.
 *
 * pglite-socket's own queue pins the session to one connection only while a
 * transaction is open. That is not enough: an extended-protocol batch
 * (Parse/Bind/Execute/Sync, which is how `pg` sends every parameterised
 * query) keeps the unnamed statement in session state until Sync, so two
 * connections' batches interleaved message by message clobber each other
 * (electric-sql/pglite#1046). Here the session stays with a connection until
 * its batch ends *and* no transaction is open, and a failing message never
 * wedges the queue.
 */
interface Item {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (err: unknown) => void;
}

const SYNC = 0x53; // 'S'
const QUERY = 0x51; // 'Q'
const TERMINATE = 0x58; // 'X'

export class SessionQueue {
  private readonly items: Item[] = [];
  private owner: number | null = null;
  private draining = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      this.items.push({ handlerId, message, onData, resolve, reject });
      void this.drain();
    });
  }

  getQueueLength(): number {
    return this.items.length;
  }

  clearQueueForHandler(handlerId: number): void {
    for (let i = this.items.length - 1; i >= 0; i--) {
      const item = this.items[i]!;
      if (item.handlerId === handlerId) {
        this.items.splice(i, 1);
        item.reject(new Error('connection closed'));
      }
    }
  }

  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    if (this.db.isInTransaction()) await this.db.exec('ROLLBACK');
    this.owner = null;
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (;;) {
        const index = this.owner === null ? 0 : this.items.findIndex((i) => i.handlerId === this.owner);
        if (index < 0 || this.items.length === 0) return;
        const item = this.items.splice(index, 1)[0]!;
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data: Uint8Array) => {
                bytes += data.length;
                item.onData(data);
              },
            }),
          );
          item.resolve(bytes);
        } catch (err) {
          item.reject(err);
        }
        this.owner = this.holdsSession(item.message) ? item.handlerId : null;
      }
    } finally {
      this.draining = false;
    }
  }

  private holdsSession(message: Uint8Array): boolean {
    if (this.db.isInTransaction()) return true;
    const type = message[0];
    // A startup packet begins with its length (first byte 0); it ends with ReadyForQuery like Sync and Query do.
    return !(type === 0 || type === SYNC || type === QUERY || type === TERMINATE);
  }
}
