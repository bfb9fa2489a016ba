import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export interface TokoProcess {
  child: ChildProcess;
  url: string;
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** Resolves with the first log line that matches, or rejects at the deadline. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

/** Runs `src/main.ts` as its own process, the way `npm start` does, and waits until it listens. */
export async function startTokoProcess(env: Record<string, string>, timeoutMs = 30_000): Promise<TokoProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'debug',
      REGISTER_MAX_PER_CLIENT: '1000000',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const waiters = new Set<{
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }>();
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, unknown>;
    try {
      line = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    lines.push(line);
    for (const w of waiters) {
      if (w.match(line)) {
        waiters.delete(w);
        w.resolve(line);
      }
    }
  });
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const waitForLine = (match: (l: Record<string, unknown>) => boolean, ms = timeoutMs) => {
    const seen = lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const w = { match, resolve };
      waiters.add(w);
      const timer = setTimeout(() => {
        waiters.delete(w);
        reject(new Error(`no matching log line within ${ms} ms; stderr: ${stderr}`));
      }, ms);
      const done = w.resolve;
      w.resolve = (l) => {
        clearTimeout(timer);
        done(l);
      };
    });
  };
  const listening = await Promise.race([
    waitForLine((l) => l.msg === 'toko is listening'),
    exited.then((code) => {
      throw new Error(`toko exited with ${code} before listening: ${stderr}`);
    }),
  ]);
  return { child, url: listening.url as string, lines, stderr: () => stderr, waitForLine, exited };
}
