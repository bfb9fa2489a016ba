import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestApp, type TestApp } from './helpers/app.ts';
import { TEST_ADMIN_ENV } from './helpers/http.ts';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');

/** What another project writes: the shop's flow through the installed package, in plain JavaScript. */
const flow = `
import { createTokoClient } from 'toko-client';
let token;
const toko = createTokoClient(process.argv[2], { token: () => token });
const tag = Math.random().toString(36).slice(2, 10);
const me = { email: 'pkg.' + tag + '@example.co.id', username: 'pkg_' + tag, password: 'rahasia-sekali', fullName: 'Dewi Lestari' };
const reg = await toko.POST('/api/v1/users/register', { body: me });
if (reg.response.status !== 201) throw new Error('register: ' + reg.response.status);
token = (await toko.POST('/api/v1/users/login', { body: { email: me.email, password: me.password } })).data.accessToken;
const products = (await toko.GET('/api/v1/products', { params: { query: { limit: 1 } } })).data.items;
const order = await toko.POST('/api/v1/orders', {
  body: { items: [{ productId: products[0].id, quantity: 1 }] },
  params: { header: { 'idempotency-key': 'pkg-' + tag } },
});
const missing = await toko.GET('/api/v1/orders/{id}', { params: { path: { id: '00000000-0000-4000-8000-000000000000' } } });
console.log(JSON.stringify({ status: order.response.status, orderStatus: order.data?.status, missing: missing.error?.code }));
`;

/** A TypeScript consumer: the package's types reach it (a wrong path or body is a compile error). */
const typed = `
import { createTokoClient, type Schemas } from 'toko-client';
const toko = createTokoClient('http://localhost:3000');
export const order: Promise<Schemas['Order'] | undefined> = toko.GET('/api/v1/orders/{id}', { params: { path: { id: 'x' } } }).then((r) => r.data);
// @ts-expect-error: no such path
void toko.GET('/api/v1/nothing-here');
`;

describe('the typed client as a package another project installs', () => {
  let app: TestApp;
  let project: string;
  beforeAll(async () => {
    app = await startTestApp({ ...TEST_ADMIN_ENV, SEED_DEMO: 'true' });
    project = mkdtempSync(path.join(tmpdir(), 'toko-client-'));
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it('packs with its built JavaScript and types, installs from the tarball, and runs the shop flow', async () => {
    await run('npm', ['pack', path.join(root, 'client'), '--pack-destination', project, '--silent'], {
      cwd: root,
      timeout: 120_000,
    });
    const tarball = readdirSync(project).find((f) => f.endsWith('.tgz'));
    expect(tarball, 'npm pack wrote a tarball').toBeDefined();
    const listed = (await run('tar', ['-tzf', path.join(project, tarball!)])).stdout;
    expect(listed).toContain('package/dist/index.js');
    expect(listed).toContain('package/dist/index.d.ts');
    expect(listed).not.toContain('package/index.ts');

    writeFileSync(
      path.join(project, 'package.json'),
      JSON.stringify({ name: 'shop-frontend', private: true, type: 'module' }),
    );
    await run('npm', ['install', `./${tarball}`, '--no-audit', '--no-fund', '--prefer-offline', '--silent'], {
      cwd: project,
      timeout: 180_000,
    });
    writeFileSync(path.join(project, 'flow.mjs'), flow);
    const { stdout } = await run(process.execPath, ['flow.mjs', app.url], { cwd: project, timeout: 30_000 });
    expect(JSON.parse(stdout.trim())).toEqual({ status: 201, orderStatus: 'confirmed', missing: 'ORDER.NOT_FOUND' });

    writeFileSync(path.join(project, 'typed.ts'), typed);
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    await run(
      process.execPath,
      [
        tsc,
        '--noEmit',
        '--strict',
        '--module',
        'nodenext',
        '--moduleResolution',
        'nodenext',
        '--target',
        'es2022',
        'typed.ts',
      ],
      { cwd: project, timeout: 120_000 },
    );
  }, 300_000);
});
