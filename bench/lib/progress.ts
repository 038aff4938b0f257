/**
 * A single status line for long runs (`npm run bench`, `npm run loadtest`, `npm run chaos`): on
 * a terminal it is redrawn in place on stderr with `\r` (what runs, its place in the run, time
 * elapsed and, when the end is known, time left); when stderr is not a TTY (CI, a pipe, a file)
 * it writes nothing, so logs stay clean. Lines logged through it go above the status line.
 *
 *   const progress = new Progress('chaos');
 *   progress.update('faults', { index: 3, total: 10, endsAtMs: start + 60_000 });
 *   progress.log('a line that stays');
 *   progress.stop();
 */

/** What the status line is written to: process.stderr, or a stand-in with `isTTY` in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export interface ProgressStep {
  /** 1-based place of this step in the run, shown as `index/total`. */
  index?: number;
  total?: number;
  /** When this step (or the run) ends, in ms since the epoch: shown as time left. */
  endsAtMs?: number;
}

export interface ProgressOptions {
  /** Default process.stderr. */
  stream?: ProgressStream;
  /** Redraw period while a step runs (the clock ticks), in ms. Default 1000. */
  intervalMs?: number;
  /** Default Date.now. */
  now?: () => number;
}

/** Erases the terminal line from the cursor on (ANSI EL). */
const CLEAR_LINE = '\x1b[K';

export class Progress {
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly intervalMs: number;
  private readonly startedAtMs: number;
  private text = '';
  private step: ProgressStep = {};
  private timer: NodeJS.Timeout | undefined;
  /** A status line is on screen (to be cleared before a log line, or at stop). */
  private shown = false;

  constructor(
    private readonly label: string,
    options: ProgressOptions = {},
  ) {
    this.stream = options.stream ?? process.stderr;
    this.now = options.now ?? Date.now;
    this.intervalMs = options.intervalMs ?? 1000;
    this.startedAtMs = this.now();
  }

  /** True when the status line is drawn at all (stderr is a terminal). */
  get enabled(): boolean {
    return this.stream.isTTY === true;
  }

  /** Shows `text` (with its place in the run and its end, if known) and keeps the clock ticking. */
  update(text: string, step: ProgressStep = {}): void {
    this.text = text;
    this.step = step;
    if (!this.enabled) return;
    this.draw();
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.draw(), this.intervalMs);
      this.timer.unref();
    }
  }

  /** Writes a line that stays (always, TTY or not), keeping the status line below it. */
  log(line: string): void {
    if (this.shown) this.stream.write(`\r${CLEAR_LINE}`);
    this.stream.write(`${line}\n`);
    this.shown = false;
    if (this.enabled && this.text !== '') this.draw();
  }

  /** Clears the status line and stops the clock. */
  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.shown) this.stream.write(`\r${CLEAR_LINE}`);
    this.shown = false;
    this.text = '';
  }

  /** The status line as drawn now, e.g. `chaos: faults 3/10 · 0:12 elapsed · 0:48 left`. */
  status(): string {
    const parts = [`${this.label}: ${this.text}${this.placeOf()}`, `${clock(this.now() - this.startedAtMs)} elapsed`];
    if (this.step.endsAtMs !== undefined) parts.push(`${clock(Math.max(0, this.step.endsAtMs - this.now()))} left`);
    const line = parts.join(' · ');
    const width = this.stream.columns;
    return width !== undefined && width > 1 && line.length >= width ? `${line.slice(0, width - 2)}…` : line;
  }

  private placeOf(): string {
    const { index, total } = this.step;
    if (index === undefined) return '';
    return total === undefined ? ` ${index}` : ` ${index}/${total}`;
  }

  private draw(): void {
    this.stream.write(`\r${this.status()}${CLEAR_LINE}`);
    this.shown = true;
  }
}

/** `m:ss`, or `h:mm:ss` past an hour. */
export function clock(ms: number): string {
  const total = Math.round(ms / 1000);
  const s = total % 60;
  const m = Math.floor(total / 60) % 60;
  const h = Math.floor(total / 3600);
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
