import { CronExpression, CronSyntaxError } from '../../src/modules/cron/expression';

/**
 * The cron parser follows the Rust `cron` crate 0.15 the original uses: 6 or 7 fields
 * `sec min hour day-of-month month day-of-week [year]`, day-of-week 1 = Sunday, UTC.
 */

const utc = (iso: string) => new Date(iso);

/** The next `count` occurrences after `from`, as ISO strings. */
function upcoming(expression: string, from: string, count = 1): string[] {
  const cron = CronExpression.parse(expression);
  const out: string[] = [];
  let at = utc(from);
  for (let i = 0; i < count; i++) {
    const next = cron.nextAfter(at);
    if (!next) break;
    out.push(next.toISOString());
    at = next;
  }
  return out;
}

function rejection(expression: string): string {
  try {
    CronExpression.parse(expression);
  } catch (err) {
    expect(err).toBeInstanceOf(CronSyntaxError);
    return (err as Error).message;
  }
  throw new Error(`'${expression}' was accepted`);
}

describe('cron expression syntax', () => {
  test('* in every field fires every second, strictly after the given time', () => {
    expect(upcoming('* * * * * *', '2024-01-01T00:00:00.500Z', 3)).toEqual([
      '2024-01-01T00:00:01.000Z',
      '2024-01-01T00:00:02.000Z',
      '2024-01-01T00:00:03.000Z',
    ]);
    expect(upcoming('* * * * * *', '2024-01-01T00:00:05.000Z')).toEqual(['2024-01-01T00:00:06.000Z']);
  });

  test('a list picks each listed value', () => {
    expect(upcoming('0 0,30 * * * *', '2024-01-01T00:00:00Z', 3)).toEqual([
      '2024-01-01T00:30:00.000Z',
      '2024-01-01T01:00:00.000Z',
      '2024-01-01T01:30:00.000Z',
    ]);
  });

  test('a range is inclusive at both ends', () => {
    expect(upcoming('0 0 9-11 * * *', '2024-01-01T10:30:00Z', 3)).toEqual([
      '2024-01-01T11:00:00.000Z',
      '2024-01-02T09:00:00.000Z',
      '2024-01-02T10:00:00.000Z',
    ]);
  });

  test('*/n steps from the field minimum', () => {
    expect(upcoming('*/15 * * * * *', '2024-01-01T00:00:00Z', 4)).toEqual([
      '2024-01-01T00:00:15.000Z',
      '2024-01-01T00:00:30.000Z',
      '2024-01-01T00:00:45.000Z',
      '2024-01-01T00:01:00.000Z',
    ]);
  });

  test('a/n steps from a to the field maximum', () => {
    expect(upcoming('5/20 * * * * *', '2024-01-01T00:00:00Z', 4)).toEqual([
      '2024-01-01T00:00:05.000Z',
      '2024-01-01T00:00:25.000Z',
      '2024-01-01T00:00:45.000Z',
      '2024-01-01T00:01:05.000Z',
    ]);
  });

  test('a-b/n steps within the range', () => {
    expect(upcoming('0 10-30/10 * * * *', '2024-01-01T00:00:00Z', 4)).toEqual([
      '2024-01-01T00:10:00.000Z',
      '2024-01-01T00:20:00.000Z',
      '2024-01-01T00:30:00.000Z',
      '2024-01-01T01:10:00.000Z',
    ]);
  });

  test('month names, short or long, any case, also in ranges', () => {
    const expected = upcoming('0 0 0 1 3 *', '2024-01-01T00:00:00Z');
    expect(upcoming('0 0 0 1 MAR *', '2024-01-01T00:00:00Z')).toEqual(expected);
    expect(upcoming('0 0 0 1 march *', '2024-01-01T00:00:00Z')).toEqual(expected);
    expect(upcoming('0 0 0 1 Mar *', '2024-01-01T00:00:00Z')).toEqual(expected);
    expect(upcoming('0 0 0 1 NOV-DEC *', '2024-01-01T00:00:00Z', 3)).toEqual([
      '2024-11-01T00:00:00.000Z',
      '2024-12-01T00:00:00.000Z',
      '2025-11-01T00:00:00.000Z',
    ]);
  });

  test('day-of-week counts from 1 = Sunday to 7 = Saturday, as the crate does', () => {
    // 2024-01-01 is a Monday.
    expect(upcoming('0 0 0 * * 1', '2024-01-01T00:00:00Z')).toEqual(['2024-01-07T00:00:00.000Z']);
    expect(upcoming('0 0 0 * * 2', '2024-01-01T00:00:00Z')).toEqual(['2024-01-08T00:00:00.000Z']);
    expect(upcoming('0 0 0 * * 7', '2024-01-01T00:00:00Z')).toEqual(['2024-01-06T00:00:00.000Z']);
    expect(upcoming('0 0 0 * * SUN', '2024-01-01T00:00:00Z')).toEqual(['2024-01-07T00:00:00.000Z']);
    expect(upcoming('0 0 0 * * sat', '2024-01-01T00:00:00Z')).toEqual(['2024-01-06T00:00:00.000Z']);
    // MON-FRI = 2-6: Friday 5th, then Monday 8th.
    expect(upcoming('0 0 12 * * MON-FRI', '2024-01-05T00:00:00Z', 2)).toEqual([
      '2024-01-05T12:00:00.000Z',
      '2024-01-08T12:00:00.000Z',
    ]);
    expect(upcoming('0 0 12 * * 2-6', '2024-01-05T00:00:00Z', 2)).toEqual([
      '2024-01-05T12:00:00.000Z',
      '2024-01-08T12:00:00.000Z',
    ]);
    expect(upcoming('0 0 0 * * tues,thurs', '2024-01-01T00:00:00Z', 2)).toEqual([
      '2024-01-02T00:00:00.000Z',
      '2024-01-04T00:00:00.000Z',
    ]);
  });

  test('a day must match both day-of-month and day-of-week (the crate intersects them)', () => {
    // Friday the 13th: September and December 2024.
    expect(upcoming('0 0 0 13 * FRI', '2024-01-01T00:00:00Z', 2)).toEqual([
      '2024-09-13T00:00:00.000Z',
      '2024-12-13T00:00:00.000Z',
    ]);
  });

  test('? means * in the two day fields', () => {
    expect(upcoming('0 0 0 ? * MON', '2024-01-02T00:00:00Z')).toEqual(['2024-01-08T00:00:00.000Z']);
    expect(upcoming('0 0 0 15 * ?', '2024-01-02T00:00:00Z')).toEqual(['2024-01-15T00:00:00.000Z']);
  });

  test('the optional seventh field restricts the year', () => {
    expect(upcoming('0 0 0 1 1 * 2030', '2024-06-01T00:00:00Z', 2)).toEqual(['2030-01-01T00:00:00.000Z']);
    expect(upcoming('0 0 0 1 1 * 2030-2031', '2024-06-01T00:00:00Z', 3)).toEqual([
      '2030-01-01T00:00:00.000Z',
      '2031-01-01T00:00:00.000Z',
    ]);
  });

  test('a year in the past has no next occurrence', () => {
    expect(CronExpression.parse('0 0 0 1 1 * 2000').nextAfter(utc('2024-01-01T00:00:00Z'))).toBeUndefined();
  });

  test('whitespace between fields may be several spaces or tabs', () => {
    expect(upcoming('  0\t0  12 * *  *  ', '2024-01-01T00:00:00Z')).toEqual(['2024-01-01T12:00:00.000Z']);
  });

  test('the crate shorthands @yearly @monthly @weekly @daily @hourly are accepted', () => {
    expect(upcoming('@yearly', '2024-06-01T00:00:00Z')).toEqual(['2025-01-01T00:00:00.000Z']);
    expect(upcoming('@annually', '2024-06-01T00:00:00Z')).toEqual(['2025-01-01T00:00:00.000Z']);
    expect(upcoming('@monthly', '2024-06-15T00:00:00Z')).toEqual(['2024-07-01T00:00:00.000Z']);
    expect(upcoming('@weekly', '2024-01-01T00:00:00Z')).toEqual(['2024-01-07T00:00:00.000Z']);
    expect(upcoming('@daily', '2024-01-01T10:00:00Z')).toEqual(['2024-01-02T00:00:00.000Z']);
    expect(upcoming('@hourly', '2024-01-01T10:20:00Z')).toEqual(['2024-01-01T11:00:00.000Z']);
  });
});

describe('cron next occurrence across boundaries', () => {
  test('rolls over minute, hour, day and month at once', () => {
    expect(upcoming('* * * * * *', '2024-01-31T23:59:59.999Z')).toEqual(['2024-02-01T00:00:00.000Z']);
  });

  test('day 31 skips the months that have no 31st', () => {
    expect(upcoming('0 0 0 31 * *', '2024-01-31T00:00:00Z', 3)).toEqual([
      '2024-03-31T00:00:00.000Z',
      '2024-05-31T00:00:00.000Z',
      '2024-07-31T00:00:00.000Z',
    ]);
  });

  test('rolls over the year', () => {
    expect(upcoming('0 0 0 1 1 *', '2024-06-01T00:00:00Z')).toEqual(['2025-01-01T00:00:00.000Z']);
    expect(upcoming('59 59 23 31 12 *', '2024-12-31T23:59:59Z')).toEqual(['2025-12-31T23:59:59.000Z']);
  });

  test('the leap day comes every four years, and 2100 is not a leap year', () => {
    expect(upcoming('0 0 0 29 2 *', '2024-03-01T00:00:00Z', 2)).toEqual([
      '2028-02-29T00:00:00.000Z',
      '2032-02-29T00:00:00.000Z',
    ]);
    expect(upcoming('0 0 0 * * *', '2024-02-28T12:00:00Z', 2)).toEqual([
      '2024-02-29T00:00:00.000Z',
      '2024-03-01T00:00:00.000Z',
    ]);
    expect(CronExpression.parse('0 0 0 29 2 *').nextAfter(utc('2096-03-01T00:00:00Z'))).toBeUndefined();
  });

  test('an impossible date (30 February) ends the search at 2100 quickly', () => {
    const started = Date.now();
    expect(CronExpression.parse('0 0 0 30 2 *').nextAfter(utc('2024-01-01T00:00:00Z'))).toBeUndefined();
    expect(CronExpression.parse('0 0 0 31 4 * *').nextAfter(utc('2024-01-01T00:00:00Z'))).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('a sparse schedule decades away is found without scanning seconds', () => {
    const started = Date.now();
    expect(upcoming('59 59 23 31 12 * 2099', '2024-01-01T00:00:00Z')).toEqual(['2099-12-31T23:59:59.000Z']);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test('after the last second of 2100 there is nothing', () => {
    expect(CronExpression.parse('* * * * * *').nextAfter(utc('2100-12-31T23:59:59Z'))).toBeUndefined();
  });
});

describe('cron expression rejections', () => {
  test('5-field Unix syntax is refused with a hint that seconds come first', () => {
    const message = rejection('* * * * *');
    expect(message).toContain('expected 6 or 7 fields (sec min hour day-of-month month day-of-week [year]), got 5');
    expect(message).toContain('seconds come first');
  });

  test('too many, too few and no fields are refused', () => {
    expect(rejection('* * * * * * * *')).toContain('got 8');
    expect(rejection('* *')).toContain('got 2');
    expect(rejection('   ')).toContain('got 0');
  });

  test.each([
    ['60 * * * * *', 'seconds value 60 is out of range 0-59'],
    ['* 60 * * * *', 'minutes value 60 is out of range 0-59'],
    ['* * 24 * * *', 'hours value 24 is out of range 0-23'],
    ['* * * 0 * *', 'day-of-month value 0 is out of range 1-31'],
    ['* * * 32 * *', 'day-of-month value 32 is out of range 1-31'],
    ['* * * * 0 *', 'month value 0 is out of range 1-12'],
    ['* * * * 13 *', 'month value 13 is out of range 1-12'],
    ['* * * * * 0', 'day-of-week value 0 is out of range 1-7 (1 = Sunday ... 7 = Saturday, or SUN-SAT)'],
    ['* * * * * 8', 'day-of-week value 8 is out of range 1-7'],
    ['* * * * * * 1969', 'year value 1969 is out of range 1970-2100'],
    ['* * * * * * 2101', 'year value 2101 is out of range 1970-2100'],
    ['0-70/10 * * * * *', 'seconds value 70 is out of range 0-59'],
  ])('out of range: %s', (expression, reason) => {
    expect(rejection(expression)).toContain(reason);
  });

  test.each([
    ['* * 5-3 * * *', "range '5-3' in hours is reversed"],
    ['*/0 * * * * *', "step in seconds element '*/0' must be at least 1"],
    ['*/x * * * * *', "step 'x' in seconds element '*/x' must be a whole number"],
    ['1/2/3 * * * * *', "step '2/3' in seconds element '1/2/3' must be a whole number"],
    ['MON * * * * *', "the seconds field does not accept names, got 'MON'"],
    ['* * * * FOO *', "'FOO' is not a month name"],
    ['* * * * * FUN', "'FUN' is not a day-of-week name"],
    ['1,,2 * * * * *', "empty list element in seconds field '1,,2'"],
    ['* ? * * * *', "'?' is only allowed in day-of-month and day-of-week, not in minutes"],
    ['* * * * ? *', "'?' is only allowed in day-of-month and day-of-week, not in month"],
    ['-5 * * * * *', 'a seconds value is missing'],
    ['1.5 * * * * *', "'1.5' is not a valid seconds value"],
    ['* * * L * *', 'the day-of-month field does not accept names'],
    ['@reboot', 'expected 6 or 7 fields'],
  ])('syntax: %s', (expression, reason) => {
    expect(rejection(expression)).toContain(reason);
  });
});
