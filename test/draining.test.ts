import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { call, newUser } from './helpers/http.ts';
import { startTokoProcess, type TokoProcess } from './helpers/process.ts';

const dataDir = mkdtempSync(path.join(tmpdir(), 'toko-drain-'));
let running: TokoProcess | undefined;

afterAll(() => {
  running?.child.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('draining on SIGTERM (DRAIN_DELAY_MS)', () => {
  it('answers readiness 503 at once, keeps serving during the delay, finishes the in-flight request, then exits 0', async () => {
    // A high bcrypt cost keeps the login in flight while the signal arrives.
    running = await startTokoProcess({ DATA_DIR: dataDir, BCRYPT_COST: '12', DRAIN_DELAY_MS: '3000' });
    const user = newUser();
    expect((await call(running.url, 'POST', '/api/v1/users/register', { body: user })).status).toBe(201);
    const before = await fetch(`${running.url}/health/ready`);
    expect(before.status).toBe(200);
    expect(before.headers.get('connection')).toBe('keep-alive');

    const login = call(running.url, 'POST', '/api/v1/users/login', {
      body: { email: user.email, password: user.password },
      headers: { 'x-request-id': 'draining-login' },
    });
    await running.waitForLine((l) => l.requestId === 'draining-login' && l.msg === 'request started');
    running.child.kill('SIGTERM');
    await running.waitForLine((l) => l.msg === 'shutting down');

    // Draining: not ready, but still serving (the gateway may not have noticed yet).
    const ready = await fetch(`${running.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { failing: string[] }).failing).toEqual(['draining']);
    const live = await fetch(`${running.url}/health`);
    expect(live.status).toBe(200);
    // Connections stay kept alive while draining: a gateway that had to open a new one for each request would
    // have some in the listener's queue, reset, when it closes (test/listener-close.test.ts).
    expect(live.headers.get('connection')).toBe('keep-alive');
    expect(ready.headers.get('connection')).toBe('keep-alive');

    const res = await login;
    expect(res.status).toBe(200);
    expect(res.body.accessToken).toEqual(expect.any(String));
    expect(await running.exited).toBe(0);
    expect(running.stderr()).toBe('');
    await expect(fetch(`${running.url}/health`)).rejects.toThrow();
  });
});
