/** Delay before the first restart after a failure, in milliseconds. */
export const RESTART_INITIAL_DELAY_MS = 1000;
/** Each failure in a row doubles the delay, up to this, in milliseconds. */
export const RESTART_MAX_DELAY_MS = 30_000;
/**
 * A kept-running command that stayed up this long counted as healthy: when it exits, the delay
 * starts over from RESTART_INITIAL_DELAY_MS, in milliseconds.
 */
export const HEALTHY_RUN_MS = 10_000;

/** The delays between restarts of a failing pipeline: 1 s, 2 s, 4 s ... 30 s, 30 s ... */
export class RestartBackoff {
  private failures = 0;

  /** The delay before the next restart; counts one more failure. */
  next(): number {
    const delayMs = Math.min(RESTART_MAX_DELAY_MS, RESTART_INITIAL_DELAY_MS * 2 ** this.failures);
    // Past the cap the count no longer matters; stopping it keeps 2 ** n finite.
    if (delayMs < RESTART_MAX_DELAY_MS) this.failures++;
    return delayMs;
  }

  reset(): void {
    this.failures = 0;
  }
}
