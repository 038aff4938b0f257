import type { Logger } from './logger';

/** Shortest gap between two lines of one key, in milliseconds. */
export const LOG_LIMIT_INTERVAL_MS = 60_000;
/** Keys remembered at most; past it the key logged longest ago is forgotten. */
export const LOG_LIMIT_MAX_KEYS = 10_000;

export interface LogLimiterOptions {
  /** Shortest gap between two lines of one key, in milliseconds (default LOG_LIMIT_INTERVAL_MS). */
  intervalMs?: number;
  /** Keys remembered at most (default LOG_LIMIT_MAX_KEYS). */
  maxKeys?: number;
  /** The clock, in milliseconds; tests inject a fake one. */
  now?: () => number;
}

interface KeyState {
  /** When the key's last line was written, in milliseconds of `now`. */
  loggedAtMs: number;
  /** Lines dropped since then. */
  suppressed: number;
}

/**
 * At most one log line per key per interval, for lines a peer can cause at will: a worker that
 * reconnects forever with a wrong token, or a hostile client, would otherwise write one line per
 * attempt. The next line let through after a quiet spell carries `suppressed: <count>` (lines
 * dropped since the last one). Memory is bounded: past `maxKeys` keys the one logged longest ago
 * is forgotten (its dropped count with it), so a peer rotating addresses costs a line per new
 * address, never unbounded memory.
 */
export class LogLimiter {
  private readonly intervalMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  /** In order of the keys' last line, oldest first (a key let through moves to the end). */
  private readonly keys = new Map<string, KeyState>();

  constructor(options: LogLimiterOptions = {}) {
    this.intervalMs = options.intervalMs ?? LOG_LIMIT_INTERVAL_MS;
    this.maxKeys = Math.max(1, options.maxKeys ?? LOG_LIMIT_MAX_KEYS);
    this.now = options.now ?? Date.now;
  }

  /** Keys remembered now. */
  get size(): number {
    return this.keys.size;
  }

  /**
   * Whether a line of `key` may be written now: the number of lines dropped since the last one
   * (0 for a first line), or undefined to drop this one.
   */
  admit(key: string): number | undefined {
    const now = this.now();
    const state = this.keys.get(key);
    if (state !== undefined && now - state.loggedAtMs < this.intervalMs) {
      state.suppressed += 1;
      return undefined;
    }
    const suppressed = state?.suppressed ?? 0;
    this.keys.delete(key);
    if (this.keys.size >= this.maxKeys) {
      const oldest = this.keys.keys().next();
      if (oldest.done !== true) this.keys.delete(oldest.value);
    }
    this.keys.set(key, { loggedAtMs: now, suppressed: 0 });
    return suppressed;
  }

  /** `logger.warn(fields, message)` unless `key` logged within the interval; adds `suppressed` when lines were dropped. */
  warn(logger: Logger, key: string, fields: Record<string, unknown>, message: string): void {
    const suppressed = this.admit(key);
    if (suppressed === undefined) return;
    logger.warn(suppressed > 0 ? { ...fields, suppressed } : fields, message);
  }
}
