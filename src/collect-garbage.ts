import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * One full garbage collection, now. Start-up (loading modules, compiling
 * schemas, initialising PGlite) leaves tens of megabytes of garbage that V8
 * would otherwise keep mapped until memory pressure made it collect; a
 * process that then idles would hold it for good. Called once, when a
 * thread is ready.
 */
export function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}
