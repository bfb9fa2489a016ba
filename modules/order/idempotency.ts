import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../kit/errors.ts';
import type { Sql } from '../../kit/sql.ts';
import { jsonColumn } from '../../kit/values.ts';
import { IdempotencyInFlight, IdempotencyKeyReused } from './order.errors.ts';
import { table } from './schema.ts';

export interface IdempotencyOptions {
  ttlSeconds: number;
  /** How long a duplicate waits for the first request to finish before it gets 409. */
  waitMs: number;
  pollMs: number;
}

interface Row {
  request_hash: string;
  state: 'in_flight' | 'done';
  response_status: number | null;
  response_body: unknown;
  expires_at: Date;
}

interface StoredProblem {
  code: string;
  title: string;
  detail: string;
  extras: Record<string, unknown>;
}

/**
 * Idempotency-Key handling for one user's requests. The first request with a
 * key runs; later ones with the same key and body get its outcome (success or
 * a 409 problem) for `ttlSeconds`; the same key with another body is 422; a
 * duplicate arriving while the first runs waits for it up to `waitMs`, then
 * gets 409. Outcomes that may change on retry (503, 500) are not kept.
 */
export class IdempotencyStore {
  private readonly o: IdempotencyOptions;

  constructor(
    private readonly sql: Sql,
    opts: IdempotencyOptions,
  ) {
    this.o = { ...opts };
    if (this.o.ttlSeconds < 1) throw new Error('ttlSeconds must be at least 1');
    if (this.o.pollMs < 1 || this.o.waitMs < 0) throw new Error('pollMs must be at least 1 and waitMs not negative');
  }

  async run<T>(userId: string, key: string, requestHash: string, work: () => Promise<T>): Promise<T> {
    for (let attempt = 0; attempt < 5; attempt++) {
      if (await this.claim(userId, key, requestHash)) return this.execute(userId, key, work);
      const row = await this.awaitOutcome(userId, key, requestHash);
      if (row) return this.replay<T>(row);
      // The first attempt failed in a way that is not kept, or the key expired: try to claim it again.
    }
    throw new IdempotencyInFlight('This Idempotency-Key is busy; retry shortly');
  }

  /** Takes the key, or a key whose lifetime is over, in one statement; false when someone holds it. */
  private async claim(userId: string, key: string, requestHash: string): Promise<boolean> {
    const rows = await this.sql.query(
      `insert into ${table('idempotency_keys')} ("user_id", "key", "request_hash", "state", "expires_at")
       values ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4))
       on conflict ("user_id", "key") do update set "request_hash" = excluded."request_hash", "state" = 'in_flight', "response_status" = null,
         "response_body" = null, "created_at" = now(), "expires_at" = excluded."expires_at"
       where "idempotency_keys"."expires_at" <= now()
       returning "key"`,
      [userId, key, requestHash, this.o.ttlSeconds],
      'idempotency.claim',
    );
    return rows.length > 0;
  }

  private async read(userId: string, key: string): Promise<Row | undefined> {
    const rows = await this.sql.query<Row>(
      `select "request_hash", "state", "response_status", "response_body", "expires_at" from ${table('idempotency_keys')} where "user_id" = $1 and "key" = $2`,
      [userId, key],
      'idempotency.read',
    );
    return rows[0];
  }

  /** The stored outcome, after waiting for an in-flight first request; undefined when there is none to replay. */
  private async awaitOutcome(userId: string, key: string, requestHash: string): Promise<Row | undefined> {
    const deadline = Date.now() + this.o.waitMs;
    for (;;) {
      const row = await this.read(userId, key);
      if (!row) return undefined;
      if (row.request_hash !== requestHash)
        throw new IdempotencyKeyReused('This Idempotency-Key was used with a different request body');
      if (row.state === 'done') return row;
      if (Date.now() >= deadline)
        throw new IdempotencyInFlight('A request with this Idempotency-Key is still in progress; retry shortly');
      await sleep(this.o.pollMs);
    }
  }

  private async execute<T>(userId: string, key: string, work: () => Promise<T>): Promise<T> {
    const finish = (status: number, body: unknown) =>
      this.sql.query(
        `update ${table('idempotency_keys')} set "state" = 'done', "response_status" = $1, "response_body" = $2::jsonb where "user_id" = $3 and "key" = $4`,
        [status, JSON.stringify(body), userId, key],
        'idempotency.finish',
      );
    let result: T;
    try {
      result = await work();
    } catch (err) {
      if (err instanceof AppError && err.status === 409) {
        const problem: StoredProblem = { code: err.code, title: err.title, detail: err.message, extras: err.extras };
        await finish(err.status, problem);
      } else {
        await this.sql.query(`delete from ${table('idempotency_keys')} where "user_id" = $1 and "key" = $2`, [
          userId,
          key,
        ]);
      }
      throw err;
    }
    await finish(200, result);
    return result;
  }

  private replay<T>(row: Row): T {
    const body = jsonColumn<unknown>(row.response_body);
    if ((row.response_status ?? 200) < 400) return body as T;
    const p = body as StoredProblem;
    throw new AppError({
      code: p.code,
      status: row.response_status!,
      title: p.title,
      detail: p.detail,
      extras: p.extras,
    });
  }

  /** Deletes keys past their lifetime; returns how many. */
  async prune(): Promise<number> {
    const rows = await this.sql.query(
      `delete from ${table('idempotency_keys')} where "expires_at" <= now() returning "key"`,
    );
    return rows.length;
  }
}
