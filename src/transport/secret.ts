import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compares two secrets in time independent of their contents and of where they differ. Both are
 * hashed first, so that the comparison does not reveal the expected secret's length either.
 */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
