/** Error codes of a database that cannot be reached or is going away: the socket's, and PostgreSQL's classes 08 and 57P. */
const OUTAGE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01',
  '57P02',
  '57P03',
  '53300',
  // A write to a module's old copy after `npm run move-data` switched it (src/db/moved.ts): retried, it reaches the new one.
  'TKMOV',
]);

/** Error names the drivers give a store they cannot reach in time (knex's pool, MikroORM, the MongoDB driver). */
const OUTAGE_NAMES = new Set([
  'KnexTimeoutError',
  'ConnectionException',
  'MongoServerSelectionError',
  'MongoNetworkError',
  'MongoNetworkTimeoutError',
  'MongoPoolClearedError',
  'MongoWaitQueueTimeoutError',
  'MongoTopologyClosedError',
]);

const OUTAGE_MESSAGES =
  /Connection terminated|Connection ended|timeout exceeded when trying to connect|Client has encountered a connection error|Timeout acquiring a connection|Query read timeout/i;

/** What the MongoDB driver's timeouts say once MikroORM rewraps them as a DriverException with no cause. */
const MONGO_TIMEOUT_MESSAGES =
  /Server selection timed out|Timed out while checking out a connection|connection (?:\S+ )?to \S+ (?:timed out|closed)|Connection pool for \S+ was cleared|Topology is closed/i;

/**
 * Whether an error means a database is unavailable (down, unreachable, or not
 * answering within STORE_TIMEOUT_MS), rather than a fault in the request or
 * in toko: such a request is answered 503 with Retry-After. Follows `cause`.
 */
export function isStoreOutage(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { code, name, message } = e as { code?: unknown; name?: unknown; message?: unknown };
    // 08P01 (protocol violation) is what PostgreSQL answers to a value it cannot take (a NUL in a string): bad input, not an outage.
    if (typeof code === 'string' && (OUTAGE_CODES.has(code) || (/^08[0-9A-Z]{3}$/.test(code) && code !== '08P01')))
      return true;
    if (typeof name === 'string' && OUTAGE_NAMES.has(name)) return true;
    if (typeof message === 'string' && OUTAGE_MESSAGES.test(message)) return true;
    if (name === 'DriverException' && typeof message === 'string' && MONGO_TIMEOUT_MESSAGES.test(message)) return true;
  }
  return false;
}
