import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { redisAnswersAt, waitFor } from './wait.ts';

/** A private redis-server on a port of its own, so a test may stop and restart it without touching anyone else's. */
export class RedisServer {
  private child: ChildProcess | undefined;
  /** With `dir`, every write is appended and fsynced before Redis answers (AOF, appendfsync always), so a kill loses nothing. */
  constructor(
    readonly port: number,
    private readonly opts: { dir?: string; bind?: string[] } = {},
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const persistence = this.opts.dir
      ? ['--dir', this.opts.dir, '--appendonly', 'yes', '--appendfsync', 'always']
      : ['--appendonly', 'no'];
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        ...(this.opts.bind ?? []),
        ...(this.opts.bind?.length ? ['--protected-mode', 'no'] : []),
        '--save',
        '',
        ...persistence,
      ],
      { stdio: 'ignore' },
    );
    await waitFor(
      `redis on ${this.port}`,
      async () => ((await redisAnswersAt(this.url)) ? true : undefined),
      10_000,
      50,
    );
  }

  /** SIGSTOP: Redis keeps its socket and accepts connections, but answers nothing (a frozen store, not a stopped one). */
  freeze(): void {
    this.child?.kill('SIGSTOP');
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    this.thaw();
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }
}
