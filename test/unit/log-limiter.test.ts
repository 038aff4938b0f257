import pino from 'pino';
import { LOG_LIMIT_INTERVAL_MS, LOG_LIMIT_MAX_KEYS, LogLimiter } from '../../src/observability/log-limiter';

/** At most one line per key per interval, with the count of lines dropped; bounded memory. */

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('LogLimiter', () => {
  test('defaults: one line per key per 60 s, at most 10,000 keys', () => {
    expect(LOG_LIMIT_INTERVAL_MS).toBe(60_000);
    expect(LOG_LIMIT_MAX_KEYS).toBe(10_000);
  });

  test('lets the first line of a key through, drops the rest within the interval, then reports how many it dropped', () => {
    const c = clock();
    const limiter = new LogLimiter({ intervalMs: 60_000, now: c.now });
    expect(limiter.admit('401 /otel 10.0.0.1')).toBe(0);
    for (let i = 0; i < 5; i++) {
      c.advance(10_000);
      expect(limiter.admit('401 /otel 10.0.0.1')).toBeUndefined();
    }
    c.advance(9_999);
    expect(limiter.admit('401 /otel 10.0.0.1')).toBeUndefined();
    c.advance(1);
    expect(limiter.admit('401 /otel 10.0.0.1')).toBe(6);
    // The count starts again from the line just let through.
    c.advance(60_000);
    expect(limiter.admit('401 /otel 10.0.0.1')).toBe(0);
  });

  test('keys are independent', () => {
    const c = clock();
    const limiter = new LogLimiter({ now: c.now });
    expect(limiter.admit('a')).toBe(0);
    expect(limiter.admit('b')).toBe(0);
    expect(limiter.admit('a')).toBeUndefined();
    expect(limiter.admit('b')).toBeUndefined();
  });

  test('remembers at most maxKeys keys, forgetting the one logged longest ago', () => {
    const c = clock();
    const limiter = new LogLimiter({ maxKeys: 3, now: c.now });
    for (const key of ['a', 'b', 'c']) limiter.admit(key);
    expect(limiter.admit('b')).toBeUndefined(); // b has one dropped line
    c.advance(60_000);
    expect(limiter.admit('a')).toBe(0); // a logs again: b is now the key logged longest ago
    expect(limiter.admit('d')).toBe(0); // a fourth key: b is forgotten
    expect(limiter.size).toBe(3);
    expect(limiter.admit('b')).toBe(0); // a new key again: its dropped line went with it
    expect(limiter.admit('a')).toBeUndefined(); // a is still remembered, within its interval
    expect(limiter.size).toBe(3);
  });

  test('a flood of distinct keys never holds more than maxKeys', () => {
    const limiter = new LogLimiter({ maxKeys: 100, now: () => 0 });
    for (let i = 0; i < 10_000; i++) limiter.admit(`429 10.0.${i >> 8}.${i & 255}`);
    expect(limiter.size).toBe(100);
    // The newest are the ones remembered.
    expect(limiter.admit('429 10.0.39.15')).toBeUndefined();
    expect(limiter.admit('429 10.0.0.0')).toBe(0);
  });

  test('warn writes the fields and message, with suppressed on the first line after dropped ones', () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const c = clock();
    const limiter = new LogLimiter({ now: c.now });
    for (let i = 0; i < 20; i++) limiter.warn(logger, 'k', { peer: '10.0.0.1', status: 401 }, 'refused');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, peer: '10.0.0.1', status: 401, msg: 'refused' });
    expect(lines[0]).not.toHaveProperty('suppressed');
    c.advance(60_000);
    limiter.warn(logger, 'k', { peer: '10.0.0.1', status: 401 }, 'refused');
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ peer: '10.0.0.1', suppressed: 19, msg: 'refused' });
  });
});
