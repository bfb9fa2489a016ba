import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../src/config.ts';

const ROOT = path.resolve(import.meta.dirname, '..');

interface Compose {
  services: Record<string, { build?: unknown; image?: string; environment?: Record<string, string> }>;
}

function load(file: string): Compose {
  return parse(readFileSync(path.join(ROOT, file), 'utf8')) as Compose;
}

/** `${VAR:-default}` as compose would fill it with nothing set. */
const substitute = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1')]));

describe.each(['docker-compose.yml', 'docker-compose.split.yml'])('%s', (file) => {
  it('is valid YAML whose toko services pass the configuration schema', () => {
    const compose = load(file);
    const toko = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(toko.length).toBeGreaterThan(0);
    for (const [name, service] of toko) {
      expect(() => loadConfig(substitute(service.environment ?? {})), name).not.toThrow();
      const config = loadConfig(substitute(service.environment ?? {}));
      for (const m of config.modules) {
        const url = config.databaseUrls[m];
        expect(url, `${name} needs a database for ${m}`).toMatch(/^postgres:\/\//);
        expect(Object.keys(compose.services), `${name}: ${m} database host`).toContain(new URL(url!).hostname);
      }
    }
  });
});
