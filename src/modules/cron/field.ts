/**
 * One field of a cron expression, parsed the way the Rust `cron` crate 0.15 (the original's
 * parser) reads it: a comma list of `*`, `N`, `A-B`, each optionally followed by `/STEP`;
 * `N/STEP` means `N-max/STEP`. Ranges do not wrap (`5-3` is refused). Names are accepted where
 * the crate accepts them (months, days of week), in any case, short or long.
 */

export interface FieldSpec {
  /** Name used in error messages. */
  readonly name: string;
  readonly min: number;
  readonly max: number;
  /** `?` means the same as `*` (the crate accepts it only in the two day fields). */
  readonly allowsAny?: boolean;
  /** Lower-case name -> value. */
  readonly names?: ReadonlyMap<string, number>;
  /** Added to the out-of-range message, e.g. to explain day-of-week numbering. */
  readonly hint?: string;
}

/** A field's allowed values, ascending, and a lookup by value. */
export class FieldValues {
  private readonly allowed: boolean[];

  constructor(readonly values: readonly number[]) {
    this.allowed = [];
    for (const v of values) this.allowed[v] = true;
  }

  has(value: number): boolean {
    return this.allowed[value] === true;
  }

  /** The smallest allowed value >= `from`, or undefined. */
  next(from: number): number | undefined {
    for (const v of this.values) if (v >= from) return v;
    return undefined;
  }
}

export class CronSyntaxError extends Error {
  override readonly name = 'CronSyntaxError';
}

const MONTH_NAMES: ReadonlyArray<readonly string[]> = [
  ['jan', 'january'],
  ['feb', 'february'],
  ['mar', 'march'],
  ['apr', 'april'],
  ['may'],
  ['jun', 'june'],
  ['jul', 'july'],
  ['aug', 'august'],
  ['sep', 'september'],
  ['oct', 'october'],
  ['nov', 'november'],
  ['dec', 'december'],
];

const DAY_NAMES: ReadonlyArray<readonly string[]> = [
  ['sun', 'sunday'],
  ['mon', 'monday'],
  ['tue', 'tues', 'tuesday'],
  ['wed', 'wednesday'],
  ['thu', 'thurs', 'thursday'],
  ['fri', 'friday'],
  ['sat', 'saturday'],
];

function nameTable(groups: ReadonlyArray<readonly string[]>): ReadonlyMap<string, number> {
  const table = new Map<string, number>();
  groups.forEach((names, i) => names.forEach((n) => table.set(n, i + 1)));
  return table;
}

/** The crate's year field runs to 2100; schedules end there. */
export const LAST_YEAR = 2100;

export const FIELDS = {
  seconds: { name: 'seconds', min: 0, max: 59 },
  minutes: { name: 'minutes', min: 0, max: 59 },
  hours: { name: 'hours', min: 0, max: 23 },
  daysOfMonth: { name: 'day-of-month', min: 1, max: 31, allowsAny: true },
  months: { name: 'month', min: 1, max: 12, names: nameTable(MONTH_NAMES), hint: ' (1 = January, or JAN-DEC)' },
  daysOfWeek: {
    name: 'day-of-week',
    min: 1,
    max: 7,
    allowsAny: true,
    names: nameTable(DAY_NAMES),
    // The crate numbers days from Sunday = 1; Unix cron's 0 = Sunday is a common mistake.
    hint: ' (1 = Sunday ... 7 = Saturday, or SUN-SAT)',
  },
  years: { name: 'year', min: 1970, max: LAST_YEAR },
} as const satisfies Record<string, FieldSpec>;

const NUMBER = /^\d+$/;
const NAME = /^[a-z]+$/i;

export function parseField(text: string, spec: FieldSpec): FieldValues {
  const values = new Set<number>();
  for (const element of text.split(',')) {
    if (element === '') throw new CronSyntaxError(`empty list element in ${spec.name} field '${text}'`);
    for (const v of parseElement(element, spec)) values.add(v);
  }
  return new FieldValues([...values].sort((a, b) => a - b));
}

/** `base` or `base/step`, where base is `*`, `?`, `N` or `A-B`. */
function parseElement(element: string, spec: FieldSpec): number[] {
  const slash = element.indexOf('/');
  const base = slash === -1 ? element : element.slice(0, slash);
  const step = slash === -1 ? 1 : parseStep(element.slice(slash + 1), element, spec);
  let start: number;
  let end: number;
  if (base === '*' || base === '?') {
    if (base === '?' && !spec.allowsAny)
      throw new CronSyntaxError(`'?' is only allowed in day-of-month and day-of-week, not in ${spec.name}`);
    [start, end] = [spec.min, spec.max];
  } else {
    const dash = base.indexOf('-');
    if (dash === -1) {
      start = parseValue(base, spec);
      // A single value before a step means "from here to the end": `5/15` = 5,20,35,50.
      end = slash === -1 ? start : spec.max;
    } else {
      start = parseValue(base.slice(0, dash), spec);
      end = parseValue(base.slice(dash + 1), spec);
      if (start > end)
        throw new CronSyntaxError(
          `range '${base}' in ${spec.name} is reversed: ranges do not wrap, the start must not exceed the end`,
        );
    }
  }
  const out: number[] = [];
  for (let v = start; v <= end; v += step) out.push(v);
  return out;
}

function parseStep(text: string, element: string, spec: FieldSpec): number {
  if (!NUMBER.test(text))
    throw new CronSyntaxError(`step '${text}' in ${spec.name} element '${element}' must be a whole number`);
  const step = Number(text);
  if (step < 1) throw new CronSyntaxError(`step in ${spec.name} element '${element}' must be at least 1`);
  return step;
}

function parseValue(text: string, spec: FieldSpec): number {
  let value: number;
  if (text === '') {
    throw new CronSyntaxError(`a ${spec.name} value is missing`);
  } else if (NUMBER.test(text)) {
    value = Number(text);
  } else if (NAME.test(text)) {
    if (!spec.names) throw new CronSyntaxError(`the ${spec.name} field does not accept names, got '${text}'`);
    const named = spec.names.get(text.toLowerCase());
    if (named === undefined) throw new CronSyntaxError(`'${text}' is not a ${spec.name} name${spec.hint ?? ''}`);
    value = named;
  } else {
    throw new CronSyntaxError(`'${text}' is not a valid ${spec.name} value`);
  }
  if (value < spec.min || value > spec.max) {
    throw new CronSyntaxError(`${spec.name} value ${value} is out of range ${spec.min}-${spec.max}${spec.hint ?? ''}`);
  }
  return value;
}
