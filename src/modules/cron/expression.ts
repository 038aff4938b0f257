import { CronSyntaxError, FIELDS, LAST_YEAR, parseField, type FieldValues } from './field';

export { CronSyntaxError } from './field';

const FIELD_ORDER = 'sec min hour day-of-month month day-of-week [year]';

/** The crate's shorthands, as the 7-field expressions they stand for. */
const SHORTHANDS: ReadonlyMap<string, string> = new Map([
  ['@yearly', '0 0 0 1 1 * *'],
  ['@annually', '0 0 0 1 1 * *'],
  ['@monthly', '0 0 0 1 * * *'],
  ['@weekly', '0 0 0 * * 1 *'],
  ['@daily', '0 0 0 * * * *'],
  ['@hourly', '0 0 * * * * *'],
]);

/**
 * A cron schedule with the syntax and meaning of the Rust `cron` crate 0.15, which the original
 * engine uses: 6 or 7 fields `sec min hour day-of-month month day-of-week [year]`, day-of-week
 * 1-7 with 1 = Sunday, years 1970-2100, all in UTC. A day must match **both** day-of-month and
 * day-of-week (the crate intersects them; Unix cron would take either when both are restricted).
 */
export class CronExpression {
  private constructor(
    readonly source: string,
    private readonly seconds: FieldValues,
    private readonly minutes: FieldValues,
    private readonly hours: FieldValues,
    private readonly daysOfMonth: FieldValues,
    private readonly months: FieldValues,
    private readonly daysOfWeek: FieldValues,
    private readonly years: FieldValues,
  ) {}

  /** Parses `source`; throws CronSyntaxError whose message says what is wrong. */
  static parse(source: string): CronExpression {
    const trimmed = source.trim();
    const text = SHORTHANDS.get(trimmed.toLowerCase()) ?? trimmed;
    const parts = text === '' ? [] : text.split(/\s+/);
    if (parts.length !== 6 && parts.length !== 7) {
      const unix =
        parts.length === 5
          ? "; seconds come first, so a Unix expression like '*/5 * * * *' becomes '0 */5 * * * *'"
          : '';
      throw new CronSyntaxError(`expected 6 or 7 fields (${FIELD_ORDER}), got ${parts.length}${unix}`);
    }
    return new CronExpression(
      source,
      parseField(parts[0], FIELDS.seconds),
      parseField(parts[1], FIELDS.minutes),
      parseField(parts[2], FIELDS.hours),
      parseField(parts[3], FIELDS.daysOfMonth),
      parseField(parts[4], FIELDS.months),
      parseField(parts[5], FIELDS.daysOfWeek),
      parseField(parts[6] ?? '*', FIELDS.years),
    );
  }

  /**
   * The first whole second strictly after `after` that matches, or undefined when there is none
   * up to the end of year 2100. Each field jumps straight to its next allowed value, so the cost
   * is bounded by the days visited (at most 366 a year), never by the seconds between runs.
   */
  nextAfter(after: Date): Date | undefined {
    const start = new Date((Math.floor(after.getTime() / 1000) + 1) * 1000);
    let year = start.getUTCFullYear();
    let month = start.getUTCMonth() + 1;
    let day = start.getUTCDate();
    let hour = start.getUTCHours();
    let minute = start.getUTCMinutes();
    let second = start.getUTCSeconds();
    // A field with no allowed value left rolls over to the next value of the field above it;
    // the lower fields restart at their minimum. Out-of-range values (month 13, hour 24) have
    // no allowed value, so they roll over too.
    while (year <= LAST_YEAR) {
      const y = this.years.next(year);
      if (y === undefined) return undefined;
      if (y !== year) [year, month, day, hour, minute, second] = [y, 1, 1, 0, 0, 0];

      const mo = this.months.next(month);
      if (mo === undefined) {
        [year, month, day, hour, minute, second] = [year + 1, 1, 1, 0, 0, 0];
        continue;
      }
      if (mo !== month) [month, day, hour, minute, second] = [mo, 1, 0, 0, 0];

      const d = this.nextDay(year, month, day);
      if (d === undefined) {
        [month, day, hour, minute, second] = [month + 1, 1, 0, 0, 0];
        continue;
      }
      if (d !== day) [day, hour, minute, second] = [d, 0, 0, 0];

      const h = this.hours.next(hour);
      if (h === undefined) {
        [day, hour, minute, second] = [day + 1, 0, 0, 0];
        continue;
      }
      if (h !== hour) [hour, minute, second] = [h, 0, 0];

      const mi = this.minutes.next(minute);
      if (mi === undefined) {
        [hour, minute, second] = [hour + 1, 0, 0];
        continue;
      }
      if (mi !== minute) [minute, second] = [mi, 0];

      const s = this.seconds.next(second);
      if (s === undefined) {
        [minute, second] = [minute + 1, 0];
        continue;
      }
      return new Date(Date.UTC(year, month - 1, day, hour, minute, s));
    }
    return undefined;
  }

  /** The first day >= `from` of this month matching both day fields. */
  private nextDay(year: number, month: number, from: number): number | undefined {
    const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
    for (let day = from; day <= daysInMonth; day++) {
      // getUTCDay is 0 = Sunday; the crate's day-of-week is 1 = Sunday.
      const weekday = new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
      if (this.daysOfMonth.has(day) && this.daysOfWeek.has(weekday)) return day;
    }
    return undefined;
  }
}
