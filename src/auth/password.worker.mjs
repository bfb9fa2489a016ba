// Runs in a piscina worker thread: bcrypt is CPU-bound and would stall the event loop.
import bcrypt from 'bcryptjs';

/** @param {{ op: 'hash', password: string, cost: number } | { op: 'verify', password: string, hash: string }} task */
export default async function passwordTask(task) {
  if (task.op === 'hash') return bcrypt.hash(task.password, task.cost);
  return bcrypt.compare(task.password, task.hash);
}
