import { setTimeout as sleep } from 'node:timers/promises';
import { AppError } from '../../kit/errors.ts';
import type { Sql } from '../../kit/sql.ts';
import { jsonColumn } from '../../kit/values.ts';
import { IdempotencyInFlight, IdempotencyKeyReused } from './order.errors.ts';
import { table } from './schema.ts';

export interface IdempotencyOptions {
  ttlSeconds: number;
  /**
   * How long a first attempt may hold its key in flight. Past it, the attempt
   * is over (it met an outage or a crash before recording its outcome; no
   * request runs this long): a retry answers the order it placed, or places
   * one when it placed none.
   */
  leaseSeconds: number;
  /** How long a duplicate waits for the first request to finish before it gets 409. */
  waitMs: number;
  pollMs: number;
}

interface Row {
  request_hash: string;
  state: 'in_flight' | 'done';
  response_status: number | null;
  response_body: unknown;
  order_id: string | null;
  /** In flight past the lease: its attempt is over. */
  abandoned: boolean;
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
 *
 * An attempt that cannot record its outcome (its database went away, or the
 * process died) leaves the key in flight; once `leaseSeconds` have passed, a
 * retry answers the order that attempt placed (`recover`), or takes the key
 * and places one when it placed none or its order was rejected (released by
 * the recovery pass). The pending order names its key in the
 * statement that creates it (`placedWith`), and is created only while that
 * attempt still holds the key, so a slow first attempt and a retry that took
 * over its key never both place an order.
 */
/** A key held by this attempt: `token` tells it from a later claim of the same key. */
export interface KeyClaim {
  userId: string;
  key: string;
  token: string;
}

/**
 * A `with` clause for the statement that creates the pending order `$orderId`:
 * it names the order on its key while `claim` still holds it. The statement
 * must create the order only when this clause returned a row (`"placed_with"`).
 */
export function placedWith(claim: KeyClaim, orderId: string, first: number): { sql: string; values: string[] } {
  return {
    sql: `"placed_with" as (
       update ${table('idempotency_keys')} set "order_id" = $${first}::uuid
       where "user_id" = $${first + 1} and "key" = $${first + 2} and "state" = 'in_flight' and "order_id" is null
         and "created_at" = $${first + 3}::timestamptz
       returning "key")`,
    values: [orderId, claim.userId, claim.key, claim.token],
  };
}

export class IdempotencyStore {
  private readonly o: IdempotencyOptions;

  constructor(
    private readonly sql: Sql,
    opts: IdempotencyOptions,
  ) {
    this.o = { ...opts };
    if (this.o.ttlSeconds < 1) throw new Error('ttlSeconds must be at least 1');
    if (this.o.leaseSeconds < 1) throw new Error('leaseSeconds must be at least 1');
    if (this.o.pollMs < 1 || this.o.waitMs < 0) throw new Error('pollMs must be at least 1 and waitMs not negative');
  }

  async run<T>(
    userId: string,
    key: string,
    requestHash: string,
    work: (claim: KeyClaim) => Promise<T>,
    recover: (orderId: string) => Promise<T | undefined>,
  ): Promise<T> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const token = await this.claim(userId, key, requestHash);
      if (token !== undefined) return this.execute({ userId, key, token }, work);
      const row = await this.awaitOutcome(userId, key, requestHash);
      if (row?.state === 'done') return this.replay<T>(row);
      if (row?.order_id) {
        // The abandoned attempt's order answers, unless it came to nothing (then the key is taken again, below).
        const outcome = await recover(row.order_id);
        if (outcome !== undefined) return outcome;
      }
      // The first attempt failed in a way that is not kept, was abandoned before placing an order, or the key
      // expired: try to claim it again.
    }
    throw new IdempotencyInFlight('This Idempotency-Key is busy; retry shortly');
  }

  /**
   * Takes the key, a key whose lifetime is over, or one abandoned in flight before it placed an order, in one
   * statement; undefined when someone holds it, else the claim's token (when it was taken).
   */
  private async claim(userId: string, key: string, requestHash: string): Promise<string | undefined> {
    const rows = await this.sql.query<{ token: string }>(
      `insert into ${table('idempotency_keys')} ("user_id", "key", "request_hash", "state", "expires_at")
       values ($1, $2, $3, 'in_flight', now() + make_interval(secs => $4))
       on conflict ("user_id", "key") do update set "request_hash" = excluded."request_hash", "state" = 'in_flight', "response_status" = null,
         "response_body" = null, "order_id" = null, "created_at" = now(), "expires_at" = excluded."expires_at"
       where "idempotency_keys"."expires_at" <= now()
         or ("idempotency_keys"."state" = 'in_flight' and "idempotency_keys"."request_hash" = excluded."request_hash"
           and "idempotency_keys"."created_at" <= now() - make_interval(secs => $5)
           and ("idempotency_keys"."order_id" is null or exists (select 1 from ${table('orders')} o
             where o."id" = "idempotency_keys"."order_id" and o."status" = 'rejected')))
       returning "created_at"::text as "token"`,
      [userId, key, requestHash, this.o.ttlSeconds, this.o.leaseSeconds],
      'idempotency.claim',
    );
    return rows[0]?.token;
  }

  private async read(userId: string, key: string): Promise<Row | undefined> {
    const rows = await this.sql.query<Row>(
      `select "request_hash", "state", "response_status", "response_body", "order_id",
         "state" = 'in_flight' and "created_at" <= now() - make_interval(secs => $3) as "abandoned"
       from ${table('idempotency_keys')} where "user_id" = $1 and "key" = $2`,
      [userId, key, this.o.leaseSeconds],
      'idempotency.read',
    );
    return rows[0];
  }

  /**
   * The stored outcome, after waiting for an in-flight first request, or the abandoned attempt's row (its order,
   * if it placed one); undefined when there is none to replay.
   */
  private async awaitOutcome(userId: string, key: string, requestHash: string): Promise<Row | undefined> {
    const deadline = Date.now() + this.o.waitMs;
    for (;;) {
      const row = await this.read(userId, key);
      if (!row) return undefined;
      if (row.request_hash !== requestHash)
        throw new IdempotencyKeyReused('This Idempotency-Key was used with a different request body');
      if (row.state === 'done' || row.abandoned) return row;
      if (Date.now() >= deadline)
        throw new IdempotencyInFlight('A request with this Idempotency-Key is still in progress; retry shortly');
      await sleep(this.o.pollMs);
    }
  }

  /** Runs the claimed attempt and records its outcome, only while this claim still holds the key. */
  private async execute<T>(claim: KeyClaim, work: (claim: KeyClaim) => Promise<T>): Promise<T> {
    const held = `"user_id" = $1 and "key" = $2 and "created_at" = $3::timestamptz`;
    const mine = [claim.userId, claim.key, claim.token];
    const finish = (status: number, body: unknown) =>
      this.sql.query(
        `update ${table('idempotency_keys')} set "state" = 'done', "response_status" = $4, "response_body" = $5::jsonb where ${held}`,
        [...mine, status, JSON.stringify(body)],
        'idempotency.finish',
      );
    let result: T;
    try {
      result = await work(claim);
    } catch (err) {
      if (err instanceof AppError && err.status === 409) {
        const problem: StoredProblem = { code: err.code, title: err.title, detail: err.message, extras: err.extras };
        await finish(err.status, problem);
      } else {
        // Given back only if this attempt placed no order: one it placed may have been confirmed by a statement
        // that committed after its answer was lost (a timeout), and the key must keep answering that order.
        await this.sql.query(`delete from ${table('idempotency_keys')} where ${held} and "order_id" is null`, mine);
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
