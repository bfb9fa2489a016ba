import { MODULE_NAMES, type ModuleName } from '../registry.ts';

/** The most processes of one service `npm run split` starts: each is a whole Node process on this machine. */
export const MAX_REPLICAS = 16;

const USAGE = 'expected a count (--replicas 2) or service=count pairs (--replicas user=2,order=3)';

function count(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_REPLICAS)
    throw new Error(`--replicas: ${what} ${JSON.stringify(text)} is not a count of replicas from 1 to ${MAX_REPLICAS}`);
  return Number(text);
}

/**
 * The value of `--replicas`: `2` for two processes of every service, or
 * `user=2,order=3` for those services (the others one). Throws one line
 * naming what is wrong.
 */
export function parseReplicas(value: string | undefined): Record<ModuleName, number> {
  const all = (n: number) => Object.fromEntries(MODULE_NAMES.map((m) => [m, n])) as Record<ModuleName, number>;
  if (value === undefined || value.trim() === '') throw new Error(`--replicas needs a value: ${USAGE}`);
  if (!value.includes('=')) return all(count(value.trim(), 'the count'));
  const replicas = all(1);
  const seen = new Set<string>();
  for (const pair of value.split(',')) {
    const [name, n, ...rest] = pair.split('=').map((s) => s.trim());
    if (!name || n === undefined || rest.length > 0) throw new Error(`--replicas: ${JSON.stringify(pair)}: ${USAGE}`);
    if (!(MODULE_NAMES as readonly string[]).includes(name))
      throw new Error(`--replicas: ${name} is not a service; the services are ${MODULE_NAMES.join(', ')}`);
    if (seen.has(name)) throw new Error(`--replicas: ${name} is given twice`);
    seen.add(name);
    replicas[name as ModuleName] = count(n, `${name}'s count`);
  }
  return replicas;
}

/** The launcher's command line: `--replicas <value>` or `--replicas=<value>`, nothing else. Throws one line. */
export function parseSplitArguments(args: string[]): { replicas: Record<ModuleName, number> } {
  let value: string | undefined;
  let given = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--replicas' || arg.startsWith('--replicas=')) {
      if (given) throw new Error('--replicas is given twice');
      given = true;
      value = arg === '--replicas' ? args[++i] : arg.slice('--replicas='.length);
      if (value?.startsWith('--')) throw new Error(`--replicas needs a value: ${USAGE}`);
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}: the only one is --replicas (${USAGE})`);
  }
  return { replicas: given ? parseReplicas(value) : parseReplicas('1') };
}
