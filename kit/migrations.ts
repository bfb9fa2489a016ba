import type { MigrationObject } from '@mikro-orm/core';

/** A module's committed migrations: their names, known up front, and the classes, loaded only to migrate. */
export interface ModuleMigrations {
  /** Oldest first. */
  names: string[];
  load(): Promise<MigrationObject[]>;
}

/**
 * Declares a module's migrations, oldest first, each by its name (which is
 * also the name of the class its file exports) and a loader of its file. The
 * files — and MikroORM's migrator behind their base class — load only when a
 * migration is pending, not at every start.
 */
export function migrations(files: Record<string, () => Promise<Record<string, unknown>>>): ModuleMigrations {
  const entries = Object.entries(files);
  return {
    names: entries.map(([name]) => name),
    load: () =>
      Promise.all(
        entries.map(async ([name, load]) => {
          const cls = (await load())[name];
          if (typeof cls !== 'function')
            throw new Error(`migration file ${name} does not export a class named ${name}`);
          return { name, class: cls as MigrationObject['class'] };
        }),
      ),
  };
}
