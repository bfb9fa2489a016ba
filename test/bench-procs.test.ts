import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { idleCost, processCost } from '../bench/procs.ts';

describe('processCost (bench/procs.ts)', () => {
  it("counts a process's CPU time and its event loop's context switches", async () => {
    const before = processCost(process.pid);
    const until = Date.now() + 120;
    while (Date.now() < until); // 120 ms on the CPU
    for (let i = 0; i < 3; i++) await sleep(5); // waits: the thread gives the CPU up
    const after = processCost(process.pid);
    expect(after.cpuS - before.cpuS).toBeGreaterThanOrEqual(0.08);
    expect(after.switches - before.switches).toBeGreaterThanOrEqual(3);
  });

  it('gives zeros for a process that is gone', () => {
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    expect(processCost(Number(gone.stdout.trim()))).toEqual({ cpuS: 0, switches: 0 });
  });
});

describe('idleCost (bench/procs.ts)', () => {
  it('counts the wake-ups and CPU of a process and its children while nothing is asked of them', async () => {
    // A parent that sleeps, and a child woken every 10 ms that spins 2 ms each time: the tree's cost is the child's.
    const parent = spawn(
      process.execPath,
      [
        '-e',
        `const c = require('node:child_process').spawn(process.execPath, ['-e', 'setInterval(() => { const t = Date.now() + 2; while (Date.now() < t); }, 10)'], { stdio: 'inherit' });
         console.log('ready'); setInterval(() => {}, 60_000); process.on('SIGTERM', () => { c.kill(); process.exit(0); });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await once(parent.stdout!, 'data');
      await sleep(300);
      const idle = await idleCost(parent.pid!, 1);
      // About 100 wake-ups and 80-170 ms a second, more switches on a busy machine (they count the preempted too).
      expect(idle.wakesPerS).toBeGreaterThanOrEqual(20);
      expect(idle.wakesPerS).toBeLessThan(250);
      expect(idle.cpuMsPerS).toBeGreaterThanOrEqual(20);
    } finally {
      parent.kill('SIGTERM');
      await once(parent, 'exit');
    }
  });
});
