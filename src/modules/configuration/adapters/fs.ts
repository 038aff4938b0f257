import { existsSync, promises as fsp, watch, type FSWatcher } from 'node:fs';
import { join, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as yaml from 'js-yaml';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { isValidId } from '../errors';
import { MemoryConfigurationStore } from './memory';
import type { OutsideChange } from './store';

/** Outside edits of one file are taken in once it has been quiet this long, in ms. */
export const WATCH_DEBOUNCE_MS = 500;
/** A configuration file larger than this is refused (with a warning) rather than read. */
export const MAX_FILE_BYTES = 8 * 1024 * 1024;

export interface FsStoreOptions {
  directory: string;
  /** Files to move into `directory` once, at open (the original's old location). */
  migrateFrom?: string;
  logger: Logger;
}

/**
 * The `fs` adapter, in the original's layout: one `<id>.yaml` per id holding the value as YAML,
 * in `directory` (default `./config`, created by the first write). Registrations (name,
 * description, schema) live in memory, as MemoryConfigurationStore keeps them: the schema is
 * known again once its worker registers. Writes go to a temporary file that is renamed over the
 * old one, so a crash leaves the old value or the new one, never half a file.
 *
 * The directory is watched: an edit, a new file or a removal, once quiet for WATCH_DEBOUNCE_MS,
 * is handed to `onOutsideChange` (the module validates it and calls `adopt`). Our own writes
 * come back from the watcher too and are recognised by their value.
 */
export class FsConfigurationStore extends MemoryConfigurationStore {
  private readonly directory: string;
  private readonly debounce = new Map<string, NodeJS.Timeout>();
  /** The tail of each id's writes, so they reach the disk in order. */
  private readonly writing = new Map<string, Promise<void>>();
  private watcher: FSWatcher | undefined;
  private onOutsideChange: OutsideChange = () => undefined;
  private tmpSeq = 0;
  private closed = false;

  constructor(private readonly options: FsStoreOptions) {
    super();
    this.directory = resolve(options.directory);
  }

  override async open(onOutsideChange: OutsideChange): Promise<void> {
    this.onOutsideChange = onOutsideChange;
    if (this.options.migrateFrom !== undefined) await this.migrate(resolve(this.options.migrateFrom));
    // Ours: a missing directory is created by the first write, not at boot, so a project that
    // never uses configuration gets no `./config` folder.
    if (!existsSync(this.directory)) return;
    for (const file of await fsp.readdir(this.directory)) {
      const id = idOfFile(file);
      if (id === undefined) continue;
      const value = await this.readFile(id);
      if (value !== undefined) this.values.set(id, value);
    }
    this.watch();
  }

  private watch(): void {
    this.watcher = watch(this.directory, (_event, file) => {
      const id = file === null ? undefined : idOfFile(file.toString());
      if (id !== undefined) this.schedule(id);
    });
    this.watcher.on('error', (err) =>
      this.options.logger.warn(
        { err, directory: this.directory },
        'configuration: watching the directory failed; outside edits are no longer seen',
      ),
    );
  }

  override async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
    for (const timer of this.debounce.values()) clearTimeout(timer);
    this.debounce.clear();
    await Promise.all(this.writing.values());
  }

  protected override async persist(id: string, value: Json | undefined): Promise<void> {
    await this.queueWrite(id, () =>
      value === undefined ? fsp.rm(this.fileOf(id), { force: true }) : this.writeFile(id, value),
    );
  }

  private fileOf(id: string): string {
    return join(this.directory, `${id}.yaml`);
  }

  private async queueWrite(id: string, write: () => Promise<void>): Promise<void> {
    const run = (this.writing.get(id) ?? Promise.resolve()).then(write);
    const tail = run.catch(() => undefined);
    this.writing.set(id, tail);
    void tail.then(() => {
      if (this.writing.get(id) === tail) this.writing.delete(id);
    });
    await run;
  }

  private async writeFile(id: string, value: Json): Promise<void> {
    if (!this.watcher) {
      await fsp.mkdir(this.directory, { recursive: true });
      if (!this.closed) this.watch();
    }
    const tmp = join(this.directory, `.${id}.yaml.${process.pid}.${++this.tmpSeq}.tmp`);
    const handle = await fsp.open(tmp, 'w');
    try {
      await handle.writeFile(yaml.dump(value, { schema: yaml.CORE_SCHEMA, noRefs: true, lineWidth: -1 }));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(tmp, this.fileOf(id));
  }

  /** The value in `<id>.yaml`: undefined when the file is missing, unreadable or not YAML (warned). */
  private async readFile(id: string): Promise<Json | undefined> {
    const file = this.fileOf(id);
    try {
      const { size } = await fsp.stat(file);
      if (size > MAX_FILE_BYTES) {
        this.options.logger.warn(
          { file, size },
          `configuration: ${file} is larger than ${MAX_FILE_BYTES} bytes and is ignored`,
        );
        return undefined;
      }
      // An empty (or comments-only) file holds null.
      const documents = yaml.loadAll(await fsp.readFile(file, 'utf8'), {
        schema: yaml.CORE_SCHEMA,
        filename: file,
      }) as Json[];
      if (documents.length > 1) throw new Error(`expected one YAML document, found ${documents.length}`);
      return documents[0] ?? null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        this.options.logger.warn({ err, file }, `configuration: cannot read ${file}; it is ignored`);
      }
      return undefined;
    }
  }

  private schedule(id: string): void {
    clearTimeout(this.debounce.get(id));
    const timer = setTimeout(() => {
      this.debounce.delete(id);
      void this.reconcile(id);
    }, WATCH_DEBOUNCE_MS);
    timer.unref();
    this.debounce.set(id, timer);
  }

  /** Compares the file with what we hold and reports a difference made outside. */
  private async reconcile(id: string): Promise<void> {
    await this.writing.get(id);
    if (this.closed) return;
    const exists = existsSync(this.fileOf(id));
    const value = exists ? await this.readFile(id) : undefined;
    if (exists && value === undefined) return; // unreadable: warned, the last good value stays
    const held = this.values.get(id);
    if (value === undefined ? held === undefined : held !== undefined && isDeepStrictEqual(held, value)) return;
    this.onOutsideChange(id, value);
  }

  /** Moves `<id>.yaml` files from the old location; a name present in both stays where it is. */
  private async migrate(from: string): Promise<void> {
    if (from === this.directory) return;
    let files: string[];
    try {
      files = await fsp.readdir(from);
    } catch {
      return;
    }
    for (const file of files) {
      if (idOfFile(file) === undefined) continue;
      await fsp.mkdir(this.directory, { recursive: true });
      const target = join(this.directory, file);
      if (existsSync(target)) {
        this.options.logger.warn(
          { file: join(from, file), target },
          `configuration: ${file} exists in both ${from} and ${this.directory}; the old copy is left where it is`,
        );
        continue;
      }
      await fsp.rename(join(from, file), target);
      this.options.logger.info(
        { from: join(from, file), to: target },
        'configuration: moved to the new store location',
      );
    }
  }
}

function idOfFile(file: string): string | undefined {
  if (!file.endsWith('.yaml')) return undefined;
  const id = file.slice(0, -'.yaml'.length);
  return isValidId(id) ? id : undefined;
}
