import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../../../observability/logger';
import type { Json } from '../../../protocol/messages';
import { MemoryStateAdapter } from './memory';

const FILE_SUFFIX = '.json';
/** Longest file name we derive from a scope name; longer names are hashed (most filesystems stop at 255). */
const MAX_FILE_NAME_BYTES = 200;

export interface FileStateOptions {
  /** Directory holding one file per scope; created if missing. */
  directory: string;
  /** How often changed scopes are written out, in milliseconds. */
  saveIntervalMs: number;
  logger: Logger;
}

/**
 * State in memory, persisted to a directory (`kv` with `store_method: file_based`): one JSON
 * file per scope, `{"scope": name, "entries": [[key, value], ...]}` (pairs keep insertion
 * order, which an object with numeric-looking keys would not). Changed scopes are written
 * every `saveIntervalMs` and on close, each to a temp file renamed over the old one, so a crash
 * leaves either the old or the new file. All files are read at open.
 */
export class FileStateAdapter extends MemoryStateAdapter {
  private readonly dirty = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  /** Flushes run one after another; this is the tail of that chain. */
  private flushed: Promise<void> = Promise.resolve();

  constructor(private readonly options: FileStateOptions) {
    super();
  }

  override async open(): Promise<void> {
    const { directory, saveIntervalMs } = this.options;
    await mkdir(directory, { recursive: true });
    for (const name of await readdir(directory)) {
      if (name.endsWith(FILE_SUFFIX)) this.load(join(directory, name), await readFile(join(directory, name), 'utf8'));
    }
    this.timer = setInterval(() => {
      this.flush().catch(() => undefined);
    }, saveIntervalMs);
    this.timer.unref();
  }

  override async close(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  /** Writes every changed scope now. A scope that failed to write stays pending. */
  flush(): Promise<void> {
    const run = this.flushed.then(() => this.writeDirty());
    this.flushed = run.catch(() => undefined);
    return run;
  }

  protected override changed(scope: string): void {
    this.dirty.add(scope);
  }

  private load(path: string, text: string): void {
    let file: unknown;
    try {
      file = JSON.parse(text);
    } catch (err) {
      throw new Error(`iii-state: cannot read ${path}: ${(err as Error).message}. Fix or move the file, then restart.`);
    }
    if (!isScopeFile(file)) throw new Error(`iii-state: ${path} is not a state file ({"scope": string, "entries": [[key, value], ...]}). Fix or move the file, then restart.`);
    if (file.entries.length === 0) return;
    this.scopes.set(file.scope, new Map(file.entries.map(([key, value]) => [key, JSON.stringify(value)])));
  }

  private async writeDirty(): Promise<void> {
    const scopes = [...this.dirty];
    this.dirty.clear();
    let failure: unknown;
    for (const scope of scopes) {
      try {
        await this.writeScope(scope);
      } catch (err) {
        this.dirty.add(scope);
        failure ??= err;
        this.options.logger.error({ err, scope, directory: this.options.directory }, 'iii-state could not save a scope; retrying at the next save');
      }
    }
    if (failure !== undefined) throw failure;
  }

  private async writeScope(scope: string): Promise<void> {
    const path = join(this.options.directory, fileName(scope));
    const entries = this.scopes.get(scope);
    if (entries === undefined) {
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
      return;
    }
    // Stored values are JSON text already: the file is assembled without re-serializing them.
    const pairs = [...entries].map(([key, text]) => `[${JSON.stringify(key)},${text}]`);
    const temp = `${path}.tmp`;
    await writeFile(temp, `{"scope":${JSON.stringify(scope)},"entries":[${pairs.join(',')}]}`);
    await rename(temp, path);
  }
}

/**
 * The file of a scope: its percent-encoded name, or `#<sha256>` when that would be too long or
 * the name cannot be encoded (a lone surrogate). `#` never appears in an encoded name; hashing
 * the UTF-16 code units keeps distinct lone surrogates distinct.
 */
export function fileName(scope: string): string {
  let encoded: string | undefined;
  try {
    encoded = encodeURIComponent(scope).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  } catch {
    encoded = undefined;
  }
  if (encoded !== undefined && encoded.length + FILE_SUFFIX.length <= MAX_FILE_NAME_BYTES) return `${encoded}${FILE_SUFFIX}`;
  return `#${createHash('sha256').update(Buffer.from(scope, 'utf16le')).digest('hex')}${FILE_SUFFIX}`;
}

interface ScopeFile {
  scope: string;
  entries: Array<[string, Json]>;
}

function isScopeFile(value: unknown): value is ScopeFile {
  if (typeof value !== 'object' || value === null) return false;
  const { scope, entries } = value as Record<string, unknown>;
  return typeof scope === 'string' && Array.isArray(entries) && entries.every((e) => Array.isArray(e) && e.length === 2 && typeof e[0] === 'string');
}
