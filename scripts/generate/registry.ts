/**
 * What the renderers read of the module registry, in the shape they read it:
 * each module's definition as the deployment files see it.
 */
import path from 'node:path';
import { MODULE_DEFINITIONS, type ModuleName } from '../../src/registry.ts';

/** The repository root: generated files are named by their path from here. */
export const ROOT = path.resolve(import.meta.dirname, '..', '..');

/** The first line of every generated deployment file (YAML and nginx comments). */
export const BANNER =
  '# Generated from the module registry (src/registry.ts) by `npm run generate`: edit the generator or the modules, not this file.';

/** `USER`, `PRODUCT`...: the prefix of a module's variables. */
export const upper = (m: string) => m.toUpperCase();

/** A module's definition, as far as the deployment files read it. */
export const definition = (m: ModuleName) =>
  MODULE_DEFINITIONS[m] as {
    requires: readonly string[];
    schema: string;
    routes: { method: string; path: string; headers?: { shape?: Record<string, unknown> } }[];
    deploy?: { store?: 'postgres' | 'mongo'; env?: Record<string, string>; volumes?: string[] };
  };

/** Where a module keeps its data when deployed: its own PostgreSQL unless it says MongoDB. */
export const storeOf = (m: ModuleName) => definition(m).deploy?.store ?? 'postgres';
