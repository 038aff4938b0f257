import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { open, type Database, type Key, type RootDatabase } from 'lmdb';

/** The LMDB file inside a module's `file_path` directory (which may hold older files too). */
export const STORE_FILE = 'iii.lmdb';
/** Named databases one store holds at most (state, stream, queue and room to spare). */
const MAX_DBS = 16;

/**
 * The one embedded store behind every `file_based` module (state, stream, builtin queue): an
 * LMDB environment in `<file_path>/iii.lmdb`, one named database per module. LMDB commits are
 * copy-on-write, so a process killed mid-write leaves the last committed transaction intact;
 * a write promise resolves once its transaction is committed, which a `kill -9` cannot undo.
 * (With LMDB's overlapping sync, the OS flushes the commit to the disk right after: a power
 * loss may lose the last commits, never the store's integrity.)
 *
 * Modules naming the same directory share one environment, as the original's modules share
 * their default `kv_store_data.db`; each opening is counted and the last close closes it.
 */
export class EmbeddedStore {
  private static readonly opened = new Map<string, { store: EmbeddedStore; users: number }>();

  private constructor(
    readonly directory: string,
    private readonly root: RootDatabase,
  ) {}

  /** Opens (or shares) the store in `directory`, creating the directory. Throws with the path on failure. */
  static open(directory: string): EmbeddedStore {
    const path = resolve(directory);
    const shared = EmbeddedStore.opened.get(path);
    if (shared) {
      shared.users++;
      return shared.store;
    }
    let root: RootDatabase;
    try {
      mkdirSync(path, { recursive: true });
      root = open({ path: join(path, STORE_FILE), maxDbs: MAX_DBS, noSubdir: true });
    } catch (err) {
      throw new Error(`cannot open the embedded store in ${path}: ${(err as Error).message}`);
    }
    const store = new EmbeddedStore(path, root);
    EmbeddedStore.opened.set(path, { store, users: 1 });
    return store;
  }

  /** The named database `name`: keys are ordered-binary (strings, numbers, arrays of them), values JSON. */
  db<V>(name: string): Database<V, Key> {
    return this.root.openDB<V, Key>({ name, encoding: 'json' });
  }

  /** Releases this opening; the last one waits for pending writes and closes the environment. */
  async close(): Promise<void> {
    const shared = EmbeddedStore.opened.get(this.directory);
    if (!shared || shared.store !== this) return;
    if (--shared.users > 0) return;
    EmbeddedStore.opened.delete(this.directory);
    await this.root.flushed;
    await this.root.close();
  }
}
