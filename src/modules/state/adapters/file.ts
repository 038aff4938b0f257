import { readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { EmbeddedStore } from '../../../store/embedded-store';
import { OrderedTable, type OrderedRow } from '../../../store/ordered-table';
import { MemoryStateAdapter } from './memory';

/** The named database of iii-state in the embedded store. */
const DB_NAME = 'state';
/** Scope files of the JSON-file store this adapter replaced; imported once, then renamed. */
const LEGACY_SUFFIX = '.json';
const IMPORTED_SUFFIX = '.imported';

export interface FileStateOptions {
  /** Directory of the embedded store (`file_path`); created if missing. */
  directory: string;
  logger: Logger;
}

/**
 * State in memory and in the embedded store (`kv` with `store_method: file_based`): reads come
 * from memory, every write is committed to the store before it is acknowledged, so a crash
 * loses no acknowledged write. Rows are keyed `[scope, key]` and hold the value's JSON text; a
 * scope lists in insertion order after a restart too.
 */
export class FileStateAdapter extends MemoryStateAdapter {
  private store: EmbeddedStore | undefined;
  private table: OrderedTable<string> | undefined;

  constructor(private readonly options: FileStateOptions) {
    super();
  }

  override async open(): Promise<void> {
    this.store = EmbeddedStore.open(this.options.directory);
    this.table = new OrderedTable(this.store.db<OrderedRow<string>>(DB_NAME));
    for (const {
      key: [scope, key],
      value,
    } of this.table.load())
      this.write(scope, key, value);
    await this.importLegacyFiles();
  }

  override async close(): Promise<void> {
    await this.store?.close();
    this.store = undefined;
    this.table = undefined;
  }

  protected override async persist(scope: string, key: string, text: string | undefined): Promise<void> {
    if (!this.table) throw new Error('iii-state: the store is closed');
    await (text === undefined ? this.table.remove([scope, key]) : this.table.put([scope, key], text));
  }

  /**
   * Scope files of the JSON-file store earlier versions kept in this directory: loaded into the
   * store (a key the store already has keeps the store's value), then renamed `*.json.imported`.
   */
  private async importLegacyFiles(): Promise<void> {
    const { directory, logger } = this.options;
    for (const name of await readdir(directory)) {
      if (!name.endsWith(LEGACY_SUFFIX)) continue;
      const path = join(directory, name);
      const file = parseScopeFile(path, await readFile(path, 'utf8'));
      let imported = 0;
      for (const [key, value] of file.entries) {
        if (this.scopes.get(file.scope)?.has(key)) continue;
        const text = JSON.stringify(value);
        this.write(file.scope, key, text);
        await this.persist(file.scope, key, text);
        imported++;
      }
      await rename(path, `${path}${IMPORTED_SUFFIX}`);
      logger.info(
        { file: path, scope: file.scope, keys: imported },
        'iii-state imported a scope file of the earlier JSON-file store',
      );
    }
  }
}

interface ScopeFile {
  scope: string;
  entries: Array<[string, Json]>;
}

function parseScopeFile(path: string, text: string): ScopeFile {
  let file: unknown;
  try {
    file = JSON.parse(text);
  } catch (err) {
    throw new Error(`iii-state: cannot read ${path}: ${(err as Error).message}. Fix or move the file, then restart.`);
  }
  const { scope, entries } = (typeof file === 'object' && file !== null ? file : {}) as Record<string, unknown>;
  const valid =
    typeof scope === 'string' &&
    Array.isArray(entries) &&
    entries.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string');
  if (!valid)
    throw new Error(
      `iii-state: ${path} is not a state file ({"scope": string, "entries": [[key, value], ...]}). Fix or move the file, then restart.`,
    );
  return file as ScopeFile;
}
