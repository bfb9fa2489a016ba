import { Queue, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  assertHandlersCover,
  type DeliveryContext,
  type EventBus,
  type EventEnvelope,
  type EventHandler,
  type EventRoutes,
} from '../../kit/events.ts';
import { requestContext } from '../../kit/request-context.ts';
import { PartitionLeases } from './partition-leases.ts';

export interface BullMqEventBusOptions {
  redisUrl: string;
  routes: EventRoutes;
  /** Tries per job before it is left in the failed list. */
  attempts: number;
  /** First retry delay; doubles each time. */
  backoffMs: number;
  concurrency: number;
  logger: Logger;
  /** Prefix of every queue name: one queue per consuming module, `<prefix>-<module>`. */
  prefix?: string;
  /**
   * 1: one queue per consuming module, `concurrency` jobs at once per worker
   * (per-subject order only at concurrency 1 and one replica). More: each
   * consumer's events are spread over this many queues
   * (`<prefix>-<module>-p<i>`) by a hash of their subject, and each queue runs
   * one job at a time across every replica (BullMQ global concurrency 1), so
   * events about one subject are handled in order however many replicas consume.
   * The replicas share the partitions out by leases (`partition-leases.ts`):
   * each runs workers only for its share.
   */
  partitions?: number;
}

/** FNV-1a of the subject (the event id when it has none): the same partition in every process. */
export function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/**
 * Events as BullMQ jobs: one queue per consuming module, the event id as the
 * job id (BullMQ refuses a second job with an id it holds), retries with
 * exponential backoff, completed jobs trimmed, failed ones kept for Bull Board.
 */
export class BullMqEventBus implements EventBus {
  readonly kind = 'bullmq' as const;
  private readonly o: Required<BullMqEventBusOptions>;
  private readonly connection: Redis;
  private readonly queues = new Map<string, Queue>();
  private readonly workers: Worker[] = [];
  private readonly workerConnections: Redis[] = [];
  /** Partitioned: the workers this replica runs now, by `<consumer>:<partition>`, and each consumer's leases. */
  private readonly leased = new Map<string, { worker: Worker; connection: Redis }>();
  private readonly leases: PartitionLeases[] = [];

  constructor(opts: BullMqEventBusOptions) {
    this.o = { prefix: 'toko', partitions: 1, ...opts };
    if (!Number.isInteger(this.o.partitions) || this.o.partitions < 1) throw new Error('partitions must be at least 1');
    if (this.o.attempts < 1) throw new Error('attempts must be at least 1');
    if (this.o.concurrency < 1) throw new Error('concurrency must be at least 1');
    if (this.o.backoffMs < 0) throw new Error('backoffMs must not be negative');
    // BullMQ needs maxRetriesPerRequest: null on connections its workers block on.
    this.connection = new Redis(this.o.redisUrl, { maxRetriesPerRequest: null });
    this.connection.on('error', (err) => this.o.logger.warn({ err: err.message }, 'redis connection error'));
    for (const consumer of new Set(Object.values(this.o.routes).flat()))
      for (let p = 0; p < this.o.partitions; p++) this.queue(consumer, p);
  }

  /** The queue of `consumer`'s partition `partition` (the only one when there is one partition). */
  queueName(consumer: string, partition = 0): string {
    return this.o.partitions === 1 ? `${this.o.prefix}-${consumer}` : `${this.o.prefix}-${consumer}-p${partition}`;
  }

  private queue(consumer: string, partition: number): Queue {
    const name = this.queueName(consumer, partition);
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, {
        connection: this.connection,
        defaultJobOptions: {
          attempts: this.o.attempts,
          backoff: { type: 'exponential', delay: this.o.backoffMs },
          removeOnComplete: { age: 3600, count: 1000 },
          removeOnFail: false,
        },
      });
      q.on('error', (err) => this.o.logger.warn({ err: err.message, queue: q!.name }, 'queue error'));
      this.queues.set(name, q);
    }
    return q;
  }

  /** Every toko queue, for Bull Board and metrics. */
  allQueues(): Queue[] {
    return [...this.queues.values()];
  }

  async publish(event: EventEnvelope, _delivery: DeliveryContext): Promise<void> {
    await Promise.all(
      (this.o.routes[event.type] ?? []).map((consumer) =>
        this.queue(consumer, partitionOf(event.subject ?? event.id, this.o.partitions)).add(event.type, event, {
          jobId: event.id,
        }),
      ),
    );
  }

  consume(consumer: string, handlers: Record<string, EventHandler>): void {
    assertHandlersCover(this.o.routes, consumer, handlers);
    if (this.o.partitions === 1) {
      const connection = this.connection.duplicate();
      this.workerConnections.push(connection);
      this.workers.push(this.worker(consumer, 0, handlers, connection));
      return;
    }
    this.leases.push(
      new PartitionLeases({
        redis: this.connection,
        group: `${this.o.prefix}-${consumer}`,
        partitions: this.o.partitions,
        logger: this.o.logger,
        onAcquire: (p) => this.startLeased(consumer, p, handlers),
        onSurrender: (p) => this.stopLeased(consumer, p),
      }),
    );
  }

  /** Which partitions of `consumer` this replica works now (all of them when not partitioned). */
  heldPartitions(consumer: string): number[] {
    if (this.o.partitions === 1) return [0];
    return [...this.leased.keys()]
      .filter((k) => k.startsWith(`${consumer}:`))
      .map((k) => Number(k.slice(consumer.length + 1)))
      .sort((a, b) => a - b);
  }

  private startLeased(consumer: string, partition: number, handlers: Record<string, EventHandler>): void {
    const connection = this.connection.duplicate();
    const worker = this.worker(consumer, partition, handlers, connection);
    this.leased.set(`${consumer}:${partition}`, { worker, connection });
    void worker.run().catch((err: unknown) => this.o.logger.error({ err }, 'worker stopped'));
  }

  private async stopLeased(consumer: string, partition: number): Promise<void> {
    const key = `${consumer}:${partition}`;
    const entry = this.leased.get(key);
    if (!entry) return;
    await entry.worker.close();
    this.leased.delete(key);
    await entry.connection.quit().catch(() => entry.connection.disconnect());
  }

  private worker(consumer: string, partition: number, handlers: Record<string, EventHandler>, connection: Redis) {
    const worker = new Worker(
      this.queueName(consumer, partition),
      async (job: Job<EventEnvelope>) => {
        const handler = handlers[job.name];
        if (!handler) throw new Error(`${consumer} has no handler for ${job.name}`);
        const delivery = { attempt: job.attemptsMade + 1, maxAttempts: job.opts.attempts ?? 1 };
        await requestContext.run({ requestId: job.data.requestId ?? job.data.id }, () => handler(job.data, delivery));
      },
      // Partitioned: one job at a time per partition, and the queue's global concurrency 1 fences a second
      // worker (a replica cut off from Redis whose lease another took). A worker that finds its partition busy
      // waits at most 250 ms; a killed replica's job is put back after its 10 s lock runs out, not 30 s.
      this.o.partitions === 1
        ? { connection, concurrency: this.o.concurrency, autorun: false }
        : {
            connection,
            concurrency: 1,
            maximumRateLimitDelay: 250,
            lockDuration: 10_000,
            stalledInterval: 5_000,
            autorun: false,
          },
    );
    worker.on('error', (err) => this.o.logger.warn({ err: err.message, consumer }, 'worker error'));
    worker.on('failed', (job, err) => {
      const final = job && job.attemptsMade >= (job.opts.attempts ?? 1);
      this.o.logger[final ? 'error' : 'warn'](
        { jobId: job?.id, type: job?.name, consumer, attempt: job?.attemptsMade, err: err.message },
        final ? 'event handling failed for good' : 'event handling failed; will retry',
      );
    });
    return worker;
  }

  async start(): Promise<void> {
    await this.connection.ping();
    if (this.o.partitions > 1) await Promise.all([...this.queues.values()].map((q) => q.setGlobalConcurrency(1)));
    for (const w of this.workers) void w.run().catch((err: unknown) => this.o.logger.error({ err }, 'worker stopped'));
    await Promise.all(this.leases.map((l) => l.start()));
  }

  async ping(): Promise<void> {
    await this.connection.ping();
  }

  /** Workers first (they finish their active jobs; leased ones then give their lease up), then queues, then the connection. */
  async close(): Promise<void> {
    await Promise.all(this.leases.map((l) => l.close()));
    await Promise.all(this.workers.map((w) => w.close()));
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await Promise.all([...this.workerConnections, this.connection].map((c) => c.quit().catch(() => c.disconnect())));
  }

  /**
   * As a killed process, for tests: no more heartbeats, nothing given up; the workers stop without finishing
   * their jobs (BullMQ puts those back once their lock runs out) and every connection is dropped.
   */
  async abandon(): Promise<void> {
    for (const l of this.leases) l.abandon();
    this.leases.length = 0;
    await Promise.all([...this.leased.values()].map((e) => e.worker.close(true)));
    await Promise.all(this.workers.map((w) => w.close(true)));
    this.workers.length = 0;
    for (const e of this.leased.values()) e.connection.disconnect();
    this.leased.clear();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    for (const c of [...this.workerConnections, this.connection]) c.disconnect();
  }
}
