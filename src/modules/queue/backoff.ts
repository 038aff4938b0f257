/**
 * Delay before the next attempt after `attemptsMade` failed ones (1, 2, ...), in milliseconds:
 * `backoffMs * 2^(attemptsMade - 1)`, as the original. Capped so a long retry chain cannot
 * overflow a timer (Node clamps anything above 2^31-1 ms to 1 ms).
 */
export const MAX_BACKOFF_MS = 24 * 60 * 60 * 1000;

export function backoffDelayMs(backoffMs: number, attemptsMade: number): number {
  const exponent = Math.max(0, attemptsMade - 1);
  return Math.min(MAX_BACKOFF_MS, backoffMs * 2 ** exponent);
}
