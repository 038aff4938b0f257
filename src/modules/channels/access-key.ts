import { timingSafeEqual } from 'node:crypto';

/** Constant-time comparison of a presented channel access key with the real one. */
export function accessKeyMatches(key: string, presented: string): boolean {
  const expected = Buffer.from(key, 'utf8');
  const candidate = Buffer.from(presented, 'utf8');
  return candidate.length === expected.length && timingSafeEqual(candidate, expected);
}
