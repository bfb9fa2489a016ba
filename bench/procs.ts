import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = path.resolve(import.meta.dirname, '..');

/** Polls `url` until it answers 2xx; fails at the deadline or when `child` exits first. */
export async function waitHttp(url: string, ms = 60_000, child?: ChildProcess, init?: RequestInit): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (child && child.exitCode !== null) throw new Error(`${url}: the process exited with ${child.exitCode}`);
    try {
      if ((await fetch(url, { ...init, signal: AbortSignal.timeout(1000) })).ok) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not come up within ${ms} ms`);
    await sleep(25);
  }
}

/** A child with only PATH plus `env` in its environment; stderr goes to ours, stdout is dropped unless asked for (`pipe`: the caller reads it, and must keep reading). */
export function launch(
  command: string,
  args: string[],
  env: Record<string, string>,
  opts: { stdout?: 'ignore' | 'inherit' | 'pipe'; cwd?: string } = {},
): ChildProcess {
  return spawn(command, args, {
    cwd: opts.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
    stdio: ['ignore', opts.stdout ?? 'ignore', 'inherit'],
    detached: true,
  });
}

/** SIGTERM to the child's whole process group (npm, its shell and node), then waits for the child to exit. */
export async function stopTree(c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = once(c, 'exit');
  try {
    process.kill(-c.pid!, signal);
  } catch {
    c.kill(signal);
  }
  await Promise.race([exited, sleep(30_000)]);
}

function children(): Map<number, number[]> {
  const byParent = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(statFields(Number(entry))[1]);
      byParent.set(ppid, [...(byParent.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  return byParent;
}

/** The fields of `/proc/<pid>/stat` after the command's name (state first, then the parent's pid, ...). */
function statFields(pid: number): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** A number of `/proc/<pid>/status` (`VmRSS`, `voluntary_ctxt_switches`, ...); 0 if absent. */
function statusNumber(status: string, name: string): number {
  return Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
}

function rssKiB(pid: number): number {
  try {
    return statusNumber(readFileSync(`/proc/${pid}/status`, 'utf8'), 'VmRSS');
  } catch {
    return 0;
  }
}

/** RSS in MiB of `pid` and every descendant (what a user sees running after the command), and the processes counted. */
export function treeRss(pid: number): { mib: number; processes: { pid: number; name: string; mib: number }[] } {
  const byParent = children();
  const todo = [pid];
  const processes: { pid: number; name: string; mib: number }[] = [];
  while (todo.length) {
    const p = todo.pop()!;
    let name = '?';
    try {
      name = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    processes.push({ pid: p, name, mib: Math.round(rssKiB(p) / 1024) });
    todo.push(...(byParent.get(p) ?? []));
  }
  return { mib: processes.reduce((s, p) => s + p.mib, 0), processes };
}

/** The tree's RSS once it has settled: the largest of a few samples a second apart, after `settleMs`. */
export async function idleRss(pid: number, settleMs = 3000): Promise<number> {
  await sleep(settleMs);
  let most = 0;
  for (let i = 0; i < 3; i++) {
    most = Math.max(most, treeRss(pid).mib);
    await sleep(1000);
  }
  return most;
}

/**
 * CPU time (user + system, s, every thread) and context switches (voluntary + involuntary, its main thread: the
 * event loop's) a process has used so far; zeros once it is gone.
 */
export function processCost(pid: number): { cpuS: number; switches: number } {
  try {
    const fields = statFields(pid);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return {
      // utime and stime, in clock ticks (USER_HZ, 100 on Linux).
      cpuS: (Number(fields[11]) + Number(fields[12])) / 100,
      switches: statusNumber(status, 'voluntary_ctxt_switches') + statusNumber(status, 'nonvoluntary_ctxt_switches'),
    };
  } catch {
    return { cpuS: 0, switches: 0 };
  }
}

/**
 * What the tree of `pid` costs while nothing is asked of it, over `seconds`: CPU (user + system, every thread of
 * every process) in ms per second, and the event loops' context switches per second (each process's main
 * thread: about one per wake-up when idle).
 */
export async function idleCost(pid: number, seconds = 10): Promise<{ cpuMsPerS: number; wakesPerS: number }> {
  const pids = treeRss(pid).processes.map((p) => p.pid);
  const before = pids.map(processCost);
  const from = performance.now();
  await sleep(seconds * 1000);
  const after = pids.map(processCost);
  const elapsedS = (performance.now() - from) / 1000;
  const sum = (k: 'cpuS' | 'switches') => after.reduce((t, a, i) => t + Math.max(0, a[k] - before[i]![k]), 0);
  return {
    cpuMsPerS: Math.round((sum('cpuS') * 1000 * 10) / elapsedS) / 10,
    wakesPerS: Math.round(sum('switches') / elapsedS),
  };
}
