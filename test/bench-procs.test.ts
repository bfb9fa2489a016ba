import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { processCost } from '../bench/procs.ts';

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
