// Compiles toko (tsc -p tsconfig.build.json) into dist/ when dist/ is missing or
// older than any source file, so `npm start` always runs what the sources say,
// as plain JavaScript (no transpiler in the running process). Runs before
// start, split, migrate and seed, and at npm install (prepare).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const stamp = path.join(root, 'dist', '.built');
const sources = ['kit', 'src', 'modules', 'adapters', 'package.json', 'tsconfig.json', 'tsconfig.build.json'];

/** @param {string} p @returns {number} the latest modification time under p */
function newest(p) {
  const s = statSync(p);
  if (!s.isDirectory()) return s.mtimeMs;
  return readdirSync(p).reduce((/** @type {number} */ m, name) => Math.max(m, newest(path.join(p, name))), s.mtimeMs);
}

const built = existsSync(stamp) ? statSync(stamp).mtimeMs : 0;
const changed = sources.reduce((m, s) => Math.max(m, newest(path.join(root, s))), 0);
if (built < changed) {
  process.stderr.write('toko: compiling (tsc -p tsconfig.build.json) ...\n');
  for (const dir of ['kit', 'src', 'modules', 'adapters'])
    rmSync(path.join(root, 'dist', dir), { recursive: true, force: true });
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
