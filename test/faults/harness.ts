import { readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { TEST_ADMIN, call, registerCustomer } from '../helpers/http.ts';

export const ADMIN = TEST_ADMIN;

/** Settings that make crashes and outages converge within seconds instead of minutes. */
export const FAST_RECOVERY = {
  ADMIN_EMAIL: ADMIN.email,
  ADMIN_PASSWORD: ADMIN.password,
  BCRYPT_COST: '4',
  SEED_DEMO: 'false',
  LOG_LEVEL: 'warn',
  OUTBOX_POLL_MS: '200',
  OUTBOX_LEASE_SECONDS: '2',
  EVENT_BACKOFF_MS: '200',
  EVENT_MAX_ATTEMPTS: '30',
  ORDER_PENDING_TIMEOUT_SECONDS: '2',
  ORDER_RECOVERY_INTERVAL_SECONDS: '1',
  LOGIN_MAX_FAILURES_PER_CLIENT: '100000',
};

/** For the split topology: a breaker that opens and closes again within seconds. */
export const FAST_SPLIT = {
  ...FAST_RECOVERY,
  BREAKER_VOLUME_THRESHOLD: '3',
  BREAKER_RESET_TIMEOUT_MS: '1000',
  HTTP_CLIENT_RETRIES: '1',
  HTTP_CLIENT_TIMEOUT_MS: '2000',
};

export interface Order {
  id: string;
  status: 'pending' | 'confirmed' | 'rejected' | 'cancelled';
  userId: string;
  items: { productId: string; quantity: number }[];
}
export interface Notification {
  id: string;
  userId: string;
  template: string;
  body: string;
  status: string;
}

/** The shop seen from outside, through the public API only. */
export class Shop {
  constructor(private readonly base: () => string) {}

  async login(email: string, password: string): Promise<string> {
    const res = await call(this.base(), 'POST', '/api/v1/users/login', { body: { email, password } });
    if (res.status !== 200) throw new Error(`login answered ${res.status}: ${res.text}`);
    return res.body.accessToken as string;
  }

  admin(): Promise<string> {
    return this.login(ADMIN.email, ADMIN.password);
  }

  async customer(): Promise<{ id: string; token: string }> {
    const u = await registerCustomer(this.base());
    return { id: u.id, token: await this.login(u.email, u.password) };
  }

  async product(
    admin: string,
    stock: number,
    name = `Kopi ${Math.random().toString(36).slice(2, 8)}`,
  ): Promise<string> {
    const res = await call(this.base(), 'POST', '/api/v1/products', {
      token: admin,
      body: { name, price: 25_000, stock, category: 'uji' },
    });
    if (res.status !== 201) throw new Error(`product answered ${res.status}: ${res.text}`);
    return res.body.id as string;
  }

  async stock(id: string): Promise<number> {
    const res = await call(this.base(), 'GET', `/api/v1/products/${id}`);
    if (res.status !== 200) throw new Error(`product ${id} answered ${res.status}`);
    return res.body.stock as number;
  }

  place(token: string, items: { productId: string; quantity: number }[], key?: string) {
    return call<Order & Record<string, unknown>>(this.base(), 'POST', '/api/v1/orders', {
      token,
      body: { items },
      headers: key ? { 'idempotency-key': key } : {},
    }).catch((err: unknown) => ({
      status: 0,
      body: { error: String(err) } as unknown as Order,
      headers: new Headers(),
      text: String(err),
    }));
  }

  /** Every item of a paginated admin listing. */
  async all<T>(path: string, token: string): Promise<T[]> {
    const out: T[] = [];
    for (let skip = 0; ; skip += 100) {
      const sep = path.includes('?') ? '&' : '?';
      const res = await call<{ items: T[]; total: number }>(this.base(), 'GET', `${path}${sep}skip=${skip}&limit=100`, {
        token,
      });
      if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${res.text}`);
      out.push(...res.body.items);
      if (out.length >= res.body.total || res.body.items.length === 0) return out;
    }
  }
}

/** Runs `tasks` with at most `concurrency` in flight. */
export async function pool<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        results[i] = await task(i);
      }
    }),
  );
  return results;
}

/**
 * A real SMTP server on loopback that counts what it accepted. While `hold`
 * matches a message, it reads the whole message and never answers it, so the
 * sender is stuck exactly between handing the mail over and hearing back.
 */
export class SmtpCatcher {
  readonly accepted: string[] = [];
  readonly held: string[] = [];
  hold: (raw: string) => boolean = () => false;
  private server: SMTPServer | undefined;

  async start(): Promise<number> {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (stream, _session, callback) => {
        let raw = '';
        stream.on('data', (c: Buffer) => (raw += c.toString()));
        stream.on('end', () => {
          if (this.hold(raw)) {
            this.held.push(raw);
            return;
          }
          this.accepted.push(raw);
          callback();
        });
      },
    });
    // A sender killed mid-connection resets its socket (what these tests do on purpose): not an error of the catcher's.
    this.server.on('error', () => undefined);
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return (this.server.server.address() as AddressInfo).port;
  }

  /** Accepted messages that mention `text` (an order id appears in its confirmation). */
  count(text: string): number {
    return this.accepted.filter((m) => unfold(m).includes(text)).length;
  }

  /** Distinct messages (by Message-ID) among those: a resend of one notification after a crash is the same message. */
  messages(text: string): number {
    const ids = this.accepted
      .filter((m) => unfold(m).includes(text))
      .map((m) => /^Message-ID:\s*(\S+)/im.exec(m)?.[1] ?? m);
    return new Set(ids).size;
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** Undoes quoted-printable soft line breaks, so an id split across lines is found again. */
const unfold = (raw: string) => raw.replace(/=\r?\n/g, '');

export function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return Math.round(kb / 1024);
}

export function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** TCP connections in ESTABLISHED state whose local port is `port` (the server's side of client connections). */
export function established(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(hex) && cols[3] === '01') n++;
    }
  }
  return n;
}

/** One sample value from a Prometheus scrape, or undefined. */
export function sample(metrics: string, name: string, labels: Record<string, string>): number | undefined {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

export const report = (what: string, figures: Record<string, unknown>) =>
  console.info(
    `[faults] ${what}: ${Object.entries(figures)
      .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
      .join(', ')}`,
  );
