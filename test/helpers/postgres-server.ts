import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** The newest PostgreSQL server binaries Debian's packages installed, or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const version = readdirSync(root)
    .filter((v) => existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))[0];
  return version && path.join(root, version, 'bin');
}

/**
 * A private PostgreSQL server of the test's own (its own data directory and
 * port, trust auth on loopback), so a test may freeze it (SIGSTOP) without
 * touching the server every other suite uses. PostgreSQL refuses to run as
 * root; as root the cluster belongs to the `postgres` user.
 */
export class PostgresServer {
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'toko-pg-'));
  private readonly data = path.join(this.dir, 'data');

  /** `listen`: addresses besides loopback (the host side of test namespaces), trusted from 10.231.0.0/16. */
  constructor(
    readonly port: number,
    private readonly bin: string,
    private readonly listen: string[] = [],
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private run(tool: string, args: string[]): void {
    const asPostgres = process.getuid?.() === 0;
    const [file, argv] = asPostgres
      ? ['runuser', ['-u', 'postgres', '--', path.join(this.bin, tool), ...args]]
      : [path.join(this.bin, tool), args];
    const done = spawnSync(file, argv, { encoding: 'utf8', timeout: 60_000 });
    if (done.status !== 0) throw new Error(`${tool} failed: ${done.stderr || done.stdout}`);
  }

  start(): void {
    if (process.getuid?.() === 0) execFileSync('chown', ['postgres', this.dir]);
    this.run('initdb', ['-D', this.data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8']);
    if (this.listen.length) appendFileSync(path.join(this.data, 'pg_hba.conf'), 'host all all 10.231.0.0/16 trust\n');
    this.run('pg_ctl', [
      '-D',
      this.data,
      '-w',
      '-l',
      path.join(this.dir, 'log'),
      '-o',
      `-p ${this.port} -c listen_addresses=${['127.0.0.1', ...this.listen].join(',')} -k ${this.dir} -c fsync=off -c max_connections=200`,
      'start',
    ]);
  }

  /** The postmaster and every process it forked (backends, checkpointer, WAL writer...). */
  private pids(): number[] {
    const postmaster = Number(readFileSync(path.join(this.data, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const children = spawnSync('pgrep', ['-P', String(postmaster)], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .map(Number);
    return [postmaster, ...children];
  }

  /** SIGSTOP to every process of the server: connections stay open and nothing answers. */
  freeze(): void {
    for (const pid of this.pids()) signal(pid, 'SIGSTOP');
  }

  thaw(): void {
    for (const pid of this.pids()) signal(pid, 'SIGCONT');
  }

  stop(): void {
    try {
      this.thaw();
    } catch {
      // never started
    }
    try {
      this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', 'stop']);
    } catch {
      // never started, or already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A signal to a process that may have exited meanwhile (a backend ending as its connection closes). */
function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}
