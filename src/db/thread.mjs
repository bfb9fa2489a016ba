// Starts a worker thread's module: TypeScript sources (under tsx: npm start, tests) get
// tsx registered first — a worker does not inherit the main thread's --import hooks;
// compiled JavaScript is imported as is.
import { workerData } from 'node:worker_threads';

if (workerData.entry.endsWith('.ts')) {
  const { register } = await import('tsx/esm/api');
  register();
}
await import(workerData.entry);
