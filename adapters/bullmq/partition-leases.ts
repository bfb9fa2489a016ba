import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

/**
 * One Redis script does a replica's whole turn, so two replicas never see a
 * half-done one: it refreshes the replica's membership, drops members that
 * stopped beating, works out the replica's fair share of the partitions
 * (floor or ceil of partitions / members, the ceil going to the first members
 * by id), renews the leases it holds and takes free ones up to that share.
 * It never takes a lease another member holds: a replica over its share hands
 * the surplus over itself, after its worker for it has stopped (`release`).
 * KEYS: members (sorted set, score = expiry), then each partition's lease.
 * ARGV: member id, member TTL ms, lease TTL ms, 'tick', 'release' (then the partitions) or 'leave' (all).
 * Returns the share, then the partitions (0-based) this member holds.
 */
const SCRIPT = `
local id, memberTtl, leaseTtl, mode = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
if mode == 'release' or mode == 'leave' then
  for i = 5, #ARGV do
    local key = KEYS[tonumber(ARGV[i]) + 2]
    if redis.call('GET', key) == id then redis.call('DEL', key) end
  end
  if mode == 'leave' then
    for k = 2, #KEYS do if redis.call('GET', KEYS[k]) == id then redis.call('DEL', KEYS[k]) end end
    redis.call('ZREM', KEYS[1], id)
  end
  return {}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + memberTtl, id)
redis.call('PEXPIRE', KEYS[1], memberTtl * 10)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
table.sort(members)
local index = 0
for i, m in ipairs(members) do if m == id then index = i - 1 end end
local partitions = #KEYS - 1
local share = math.floor(partitions / #members)
if index < partitions % #members then share = share + 1 end
local held, free = {}, {}
for p = 0, partitions - 1 do
  local owner = redis.call('GET', KEYS[p + 2])
  if owner == id then
    redis.call('PEXPIRE', KEYS[p + 2], leaseTtl)
    held[#held + 1] = p
  elseif not owner then
    free[#free + 1] = p
  end
end
for _, p in ipairs(free) do
  if #held >= share then break end
  redis.call('SET', KEYS[p + 2], id, 'PX', leaseTtl)
  held[#held + 1] = p
end
table.insert(held, 1, share)
return held
`;

export interface PartitionLeasesOptions {
  redis: Redis;
  /** What the replicas share: one group per consuming module's partitioned queues. */
  group: string;
  partitions: number;
  /** Starts this replica's worker for a partition it has just taken. */
  onAcquire: (partition: number) => void;
  /** Stops that worker, its active job finished; the lease is given up only after. */
  onSurrender: (partition: number) => Promise<void>;
  logger: Logger;
  heartbeatMs?: number;
  memberTtlMs?: number;
  leaseTtlMs?: number;
}

/**
 * Which partitions of a consuming module this replica works: it runs a worker
 * only for those it holds a lease on, about partitions / replicas of them.
 * When a replica joins, the others hand over their surplus (worker closed
 * first, then the lease deleted); when one leaves (`close`) or dies (its
 * membership and leases expire) the others take its partitions.
 */
export class PartitionLeases {
  readonly id = randomUUID();
  private readonly o: Required<PartitionLeasesOptions>;
  private readonly keys: string[];
  private readonly running = new Set<number>();
  private readonly surrendering = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> = Promise.resolve();
  private lastOk = Date.now();
  private stopped = false;

  constructor(opts: PartitionLeasesOptions) {
    this.o = { heartbeatMs: 1000, memberTtlMs: 3000, leaseTtlMs: 3000, ...opts };
    if (this.o.heartbeatMs * 2 > this.o.memberTtlMs) throw new Error('memberTtlMs must be at least twice heartbeatMs');
    if (this.o.heartbeatMs * 2 > this.o.leaseTtlMs) throw new Error('leaseTtlMs must be at least twice heartbeatMs');
    const base = `toko-leases:${this.o.group}`;
    this.keys = [`${base}:members`, ...Array.from({ length: this.o.partitions }, (_, p) => `${base}:p${p}`)];
  }

  /** Partitions whose worker runs here now. */
  held(): number[] {
    return [...this.running].sort((a, b) => a - b);
  }

  /** Joins and takes a first share; then beats every `heartbeatMs`. */
  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => {
      this.ticking = this.ticking.then(() => this.tick());
    }, this.o.heartbeatMs);
  }

  private async run(mode: 'tick' | 'release' | 'leave', release: number[] = []): Promise<number[]> {
    const args = [this.id, this.o.memberTtlMs, this.o.leaseTtlMs, mode, ...release];
    return (await this.o.redis.eval(SCRIPT, this.keys.length, ...this.keys, ...args)) as number[];
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    let result: number[];
    try {
      result = await this.run('tick');
      this.lastOk = Date.now();
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message, group: this.o.group }, 'partition lease renewal failed');
      // Cut off from Redis: once our leases may have expired, another replica may hold them.
      if (Date.now() - this.lastOk >= this.o.leaseTtlMs) for (const p of this.running) this.surrender(p, false);
      return;
    }
    if (this.stopped) return;
    const [share, ...held] = result as [number, ...number[]];
    for (const p of this.running) if (!held.includes(p)) this.surrender(p, false);
    for (const p of held) if (!this.running.has(p) && !this.surrendering.has(p)) this.acquire(p);
    let surplus = held.length - share - [...this.surrendering].filter((p) => held.includes(p)).length;
    for (const p of [...held].reverse()) {
      if (surplus <= 0) break;
      if (this.surrendering.has(p)) continue;
      this.surrender(p, true);
      surplus--;
    }
  }

  private acquire(p: number): void {
    this.running.add(p);
    this.o.onAcquire(p);
  }

  /** Stops the worker (its job finishes), then, when `release`, gives the lease up for another replica. */
  private surrender(p: number, release: boolean): void {
    this.running.delete(p);
    this.surrendering.add(p);
    void this.o
      .onSurrender(p)
      .then(() => (release && !this.stopped ? this.run('release', [p]) : undefined))
      .catch((err: unknown) => this.o.logger.warn({ err: (err as Error).message, partition: p }, 'lease hand-over'))
      .finally(() => this.surrendering.delete(p));
  }

  /** Graceful leave: every worker stopped (active jobs finished), then the leases and membership given up. */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    const mine = [...this.running];
    this.running.clear();
    await Promise.all(mine.map((p) => this.o.onSurrender(p)));
    while (this.surrendering.size > 0) await new Promise((r) => setTimeout(r, 20));
    await this.run('leave').catch((err: unknown) =>
      this.o.logger.warn({ err: (err as Error).message, group: this.o.group }, 'partition leases not given up'),
    );
  }

  /** As a killed process: no more heartbeats, nothing given up (leases and membership expire). For tests. */
  abandon(): void {
    this.stopped = true;
    clearInterval(this.timer);
  }
}
