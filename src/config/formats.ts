import convict from 'convict';
import { redactUrl } from '../observability/redact-url';

/**
 * The value checks behind our convict schemas.
 *
 * A `Shape` checks one value and says, in words, what it expects. Every schema leaf carries one
 * (`leaf(shape, default, doc)`); the convict formats registered below only dispatch to it, so
 * that every error reads the same way: `expected a port number 0-65535, got "abc"`. Free-form
 * values (adapter config, RBAC filters, middleware lists, sampling rules...) are shapes too, built
 * from the combinators here, and checked as deeply as we understand them.
 */

/** A value that did not match; `path` is relative to the leaf (`[1].function_id`), or ''. */
export class ShapeError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
    readonly got: unknown,
    /** Replaces the "expected ..., got ..." wording (unknown keys). */
    problem?: string,
  ) {
    super(`${path ? `${path}: ` : ''}${problem ?? `expected ${expected}, got ${describeValue(got)}`}`);
    this.name = 'ShapeError';
  }
}

/** How a string from the file may be converted before the check (see `formatFor`). */
type Coercion = 'int' | 'number' | 'bool' | 'none';

export interface Shape {
  /** What a valid value looks like, in words: "a port number 0-65535". */
  readonly expected: string;
  /** Whether the value is a mapping checked as a whole (convict must not descend into it). */
  readonly mapping?: boolean;
  readonly coercion?: Coercion;
  /** Throws a ShapeError; `path` is where `value` sits below the leaf. */
  assert(value: unknown, path: string): void;
}

/** `"abc"`, `12`, `null`, `a list`, `a mapping`, `nothing`; long values are cut. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'a mapping';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function shape(expected: string, test: (value: unknown) => boolean, coercion: Coercion = 'none'): Shape {
  return {
    expected,
    coercion,
    assert(value, path) {
      if (!test(value)) throw new ShapeError(path, expected, value);
    },
  };
}

// --- scalars ---------------------------------------------------------------------------------

export function intRange(min: number, max?: number, unit?: string): Shape {
  const range = max === undefined ? `>= ${min}` : `${min}-${max}`;
  const expected = `an integer ${range}${unit ? ` (${unit})` : ''}`;
  return shape(
    expected,
    (v) => Number.isSafeInteger(v) && (v as number) >= min && (max === undefined || (v as number) <= max),
    'int',
  );
}

export function numberRange(min?: number, max?: number): Shape {
  const range =
    min !== undefined && max !== undefined
      ? ` ${min}-${max}`
      : min !== undefined
        ? ` >= ${min}`
        : max !== undefined
          ? ` <= ${max}`
          : '';
  return shape(
    `a number${range}`,
    (v) =>
      typeof v === 'number' && Number.isFinite(v) && (min === undefined || v >= min) && (max === undefined || v <= max),
    'number',
  );
}

export const integer: Shape = shape('an integer', (v) => Number.isSafeInteger(v), 'int');

export const port: Shape = shape(
  'a port number 0-65535',
  (v) => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535,
  'int',
);

export const bool: Shape = shape('true or false', (v) => typeof v === 'boolean', 'bool');

export const nonEmptyString: Shape = shape('a non-empty string', (v) => typeof v === 'string' && v.length > 0);

/** A function id as workers register them (`api::get_user`): non-empty, no whitespace. */
export const functionId: Shape = shape('a function id (a non-empty string without spaces)', (v) => {
  return typeof v === 'string' && /^\S+$/.test(v);
});

export const host: Shape = shape('a host name or IP address', (v) => {
  return typeof v === 'string' && /^[^\s/]+$/.test(v);
});

export function oneOf(values: readonly string[]): Shape {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return shape(expected, (v) => typeof v === 'string' && values.includes(v));
}

/** A URL of one of `schemes`; an error shows the value without its password (redactUrl). */
export function urlWithScheme(schemes: readonly string[], opts: { allowEmpty?: boolean } = {}): Shape {
  const list = schemes.map((s) => `${s}://`).join(' or ');
  const expected = `a ${list} URL${opts.allowEmpty ? ' (or "" for none)' : ''}`;
  const valid = (v: unknown): boolean => {
    if (typeof v !== 'string') return false;
    if (v === '') return opts.allowEmpty === true;
    try {
      return schemes.includes(new URL(v).protocol.replace(/:$/, ''));
    } catch {
      return false;
    }
  };
  return {
    expected,
    coercion: 'none',
    assert(value, path) {
      if (!valid(value)) throw new ShapeError(path, expected, typeof value === 'string' ? redactUrl(value) : value);
    },
  };
}

export const redisUrl: Shape = urlWithScheme(['redis', 'rediss']);

export const anyMapping: Shape = {
  expected: 'a mapping',
  mapping: true,
  assert(value, path) {
    if (!isPlainObject(value)) throw new ShapeError(path, 'a mapping', value);
  },
};

// --- combinators -----------------------------------------------------------------------------

export function listOf(item: Shape, noun = item.expected): Shape {
  const expected = `a list of ${noun}`;
  return {
    expected,
    assert(value, path) {
      if (!Array.isArray(value)) throw new ShapeError(path, expected, value);
      value.forEach((v, i) => item.assert(v, `${path}[${i}]`));
    },
  };
}

export interface FieldSpec {
  shape: Shape;
  required?: boolean;
}

/**
 * A mapping with known keys. `open` lets unknown keys through (adapter configs are permissive in
 * the original); otherwise an unknown key is an error that lists the known ones.
 */
export function record(
  fields: Record<string, Shape | FieldSpec>,
  opts: { open?: boolean; noun?: string; refine?: (value: Record<string, unknown>, path: string) => void } = {},
): Shape {
  const specs: Record<string, FieldSpec> = {};
  for (const [key, f] of Object.entries(fields)) specs[key] = 'assert' in f ? { shape: f } : f;
  const keys = Object.keys(specs).map((k) => (specs[k].required ? k : `${k}?`));
  const expected = opts.noun ?? `a mapping {${keys.join(', ')}}`;
  return {
    expected,
    mapping: true,
    assert(value, path) {
      if (!isPlainObject(value)) throw new ShapeError(path, expected, value);
      for (const [key, spec] of Object.entries(specs)) {
        const v = value[key];
        if (v === undefined || v === null) {
          if (spec.required) throw new ShapeError(`${path}.${key}`, spec.shape.expected, undefined);
          continue;
        }
        spec.shape.assert(v, `${path}.${key}`);
      }
      if (!opts.open) {
        for (const key of Object.keys(value)) {
          if (!Object.prototype.hasOwnProperty.call(specs, key)) {
            const known = Object.keys(specs).join(', ');
            throw new ShapeError(`${path}.${key}`, expected, value[key], `unknown key (expected one of: ${known})`);
          }
        }
      }
      opts.refine?.(value, path);
    },
  };
}

/** A mapping from free names to values of one shape (`queue_configs: {orders: {...}}`). */
export function mapOf(value: Shape, noun = value.expected): Shape {
  const expected = `a mapping of names to ${noun}`;
  return {
    expected,
    mapping: true,
    assert(v, path) {
      if (!isPlainObject(v)) throw new ShapeError(path, expected, v);
      for (const [key, item] of Object.entries(v)) value.assert(item, `${path}.${key}`);
    },
  };
}

/** The first alternative that accepts the value wins; the error names all of them. */
export function anyOf(expected: string, ...alternatives: Shape[]): Shape {
  return {
    expected,
    assert(value, path) {
      for (const alt of alternatives) {
        try {
          alt.assert(value, path);
          return;
        } catch (err) {
          if (!(err instanceof ShapeError)) throw err;
        }
      }
      throw new ShapeError(path, expected, value);
    },
  };
}

// --- convict glue ----------------------------------------------------------------------------

/**
 * A schema leaf as we write them. `shape` does the checking; `required` is enforced by
 * `validateBlock` when the enclosing section is present.
 */
export interface Leaf extends convict.SchemaObj {
  default: unknown;
  doc: string;
  format: string;
  shape: Shape;
  required?: boolean;
}

/** A convict schema: nested sections are plain objects, leaves have a `default`. */
export interface SchemaTree {
  [key: string]: Leaf | SchemaTree;
}

export function isLeaf(node: Leaf | SchemaTree): node is Leaf {
  return 'default' in node;
}

/**
 * Convict chooses how to convert a string from a file by the format's *name*, and descends into
 * a mapping value unless the format is literally named `object` (it would crash on a nested
 * mapping otherwise). So we register one format per coercion, plus `object` for whole mappings;
 * all of them validate through the leaf's shape.
 */
const FORMAT_BY_COERCION: Record<Coercion, string> = {
  int: 'iii-int',
  number: 'iii-number',
  bool: 'iii-bool',
  none: 'iii-value',
};

function validateWithShape(value: unknown, schema: convict.SchemaObj): void {
  (schema as Leaf).shape.assert(value, '');
}

let formatsRegistered = false;

/** Registers our formats with convict (global, idempotent). */
export function registerFormats(): void {
  if (formatsRegistered) return;
  formatsRegistered = true;
  const keep = (v: unknown): unknown => v;
  convict.addFormat({
    name: 'iii-int',
    validate: validateWithShape,
    // Only a plain decimal converts: "80abc" must fail, not become 80 as with parseInt.
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v),
  });
  convict.addFormat({
    name: 'iii-number',
    validate: validateWithShape,
    coerce: (v: unknown) => (typeof v === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(v) ? Number(v) : v),
  });
  convict.addFormat({
    name: 'iii-bool',
    validate: validateWithShape,
    coerce: (v: unknown) => (v === 'true' ? true : v === 'false' ? false : v),
  });
  convict.addFormat({ name: 'iii-value', validate: validateWithShape, coerce: keep });
  convict.addFormat({ name: 'object', validate: validateWithShape, coerce: keep });
}

/**
 * A schema leaf. A `null` default means "optional, unset" (null is then accepted as unset);
 * `required` means the key must be written whenever its section is.
 */
export function leaf(s: Shape, def: unknown, doc: string, opts: { required?: boolean } = {}): Leaf {
  return {
    doc,
    default: def,
    format: s.mapping ? 'object' : FORMAT_BY_COERCION[s.coercion ?? 'none'],
    shape: s,
    nullable: def === null && !opts.required,
    ...(opts.required ? { required: true } : {}),
  };
}
