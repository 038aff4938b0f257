import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../../observability/logger';
import { watchPatternMatches, type WatchPattern } from './watch-pattern';

/**
 * Quiet time after the last matching change before it is acted on, in milliseconds: one save
 * in an editor, or one build, is several file events.
 */
export const WATCH_DEBOUNCE_MS = 300;

/**
 * Watches the roots of the `watch` patterns (fs.watch, recursive) and calls `onChange` with the
 * first changed file once changes have been quiet for WATCH_DEBOUNCE_MS. A root that cannot be
 * watched (missing) is reported and skipped: the rest still work.
 */
export class FileWatcher {
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private firstChanged: string | undefined;

  constructor(
    private readonly patterns: readonly WatchPattern[],
    private readonly onChange: (file: string) => void,
    private readonly logger: Logger,
  ) {}

  start(): void {
    for (const root of new Set(this.patterns.map((p) => p.root))) {
      const globs = this.patterns.filter((p) => p.root === root).map((p) => p.glob);
      try {
        const watcher = watch(root, { recursive: true }, (_event, filename) => this.changed(root, filename));
        watcher.on('error', (err) =>
          this.logger.warn(
            { err, root, globs },
            `iii-exec: watching ${root} failed (${err.message}); changes there no longer restart the commands`,
          ),
        );
        this.watchers.push(watcher);
      } catch (err) {
        const reason = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
        this.logger.warn(
          { root, globs },
          `iii-exec: cannot watch ${root} (${reason}) for ${globs.join(', ')}; changes there will not restart the commands`,
        );
      }
    }
  }

  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const watcher of this.watchers) watcher.close();
    this.watchers.length = 0;
  }

  private changed(root: string, filename: string | null): void {
    // Linux always names the file; elsewhere a nameless event still means "something under root".
    const file = filename === null ? root : path.join(root, filename);
    if (filename !== null && !this.patterns.some((p) => watchPatternMatches(p, file))) return;
    this.firstChanged ??= file;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      const first = this.firstChanged!;
      this.firstChanged = undefined;
      this.timer = undefined;
      this.onChange(first);
    }, WATCH_DEBOUNCE_MS);
  }
}
