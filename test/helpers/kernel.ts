/**
 * The kernel's pieces that module tests build a service with by hand: an
 * event recorder (the outbox writer a module is given), a meter over a
 * Prometheus registry, a module's own MongoDB. Modules never import src/,
 * their tests included (the boundary check says so); they reach the kernel
 * through the test helpers, as here.
 */
export { createEventRecorder } from '../../src/events/recorder.ts';
export { registryMeter } from '../../src/telemetry/metrics.ts';
export { openModuleMongo } from '../../src/db/mongo.ts';
