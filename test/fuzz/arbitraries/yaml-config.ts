import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import * as yaml from 'js-yaml';
import { hostileString, numberToken, PROTOTYPE_KEYS } from './hostile-json';

/**
 * Configuration files for the loader: random YAML-ish token soup, the shipped configs with
 * fields mutated (wrong kinds, unknown and prototype keys, huge numbers, `${...}` placeholders
 * with odd names and defaults), and alias bombs ("billion laughs").
 */

/** A scalar written exactly as given (an unquoted placeholder, `1e400`, `.nan`). */
class Raw {
  constructor(readonly text: string) {}
}

type Value = Raw | string | number | boolean | null | Value[] | { [key: string]: Value };

const repoRoot = path.resolve(__dirname, '../../..');

function shipped(name: string): Value {
  return yaml.load(fs.readFileSync(path.join(repoRoot, 'config', name), 'utf8'), { schema: yaml.CORE_SCHEMA }) as Value;
}

/** The two configs we ship, as trees (placeholders in them stay strings: they are quoted on output). */
const BASES: Value[] = [shipped('default.yaml'), shipped('cluster.yaml')];

/** Placeholder names a user (or an attacker who controls a config) might write. */
const placeholderName = fc.oneof(
  fc.constantFrom(
    'HOME',
    'III_WS_PORT',
    'UNSET_VAR',
    ...PROTOTYPE_KEYS,
    ' ',
    '$',
    'A B',
    'X}',
    '\u0000',
    'ÅÄ',
    'x'.repeat(300),
  ),
  fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 8 }),
);

/** `${NAME}`, `${NAME:default}` and broken variants, as raw scalar text. */
const placeholder: fc.Arbitrary<string> = fc
  .tuple(
    placeholderName,
    fc.option(
      fc.oneof(
        fc.string({ maxLength: 10 }),
        fc.constantFrom('', '3111', '[a, b]', '{a: 1}', '__III_ENGINE_VERSION__', 'true', '~', '1e400', '${X}'),
      ),
    ),
    fc.constantFrom('${', '$ {', '${{'),
    fc.constantFrom('}', '', '}}'),
  )
  .map(([name, def, open, close]) => `${open}${name}${def === null ? '' : `:${def}`}${close}`);

/** Values of the wrong kind for most keys. */
const hostileValue: fc.Arbitrary<Value> = fc.oneof(
  numberToken.map((t) => new Raw(t)),
  fc
    .constantFrom(
      '.nan',
      '.inf',
      '-.inf',
      '0x10',
      '0o7',
      '1_000',
      '~',
      'yes',
      'no',
      '!!binary aGk=',
      '!!js/function "f"',
      '*undefined_alias',
    )
    .map((t) => new Raw(t)),
  placeholder.map((p) => new Raw(p)),
  placeholder,
  hostileString.filter((s) => s.length < 2_000),
  fc.constantFrom<Value>(true, false, null, [], {}, -1, 0, 2 ** 53 + 2, [1, 'a', null], { a: { b: [] } }),
  fc.constantFrom(...PROTOTYPE_KEYS).map((k): Value => ({ [k]: { polluted: true } })),
);

type Mutation =
  | { op: 'replace'; at: number; value: Value }
  | { op: 'delete'; at: number }
  | { op: 'addKey'; at: number; key: string; value: Value };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('addKey' as const),
      at: fc.nat(),
      key: fc.oneof(
        fc.constantFrom(...PROTOTYPE_KEYS, '<<', 'name', 'config', 'image', 'port'),
        hostileString.filter((s) => s.length < 200),
      ),
      value: hostileValue,
    }),
    weight: 2,
  },
);

function isMapping(v: Value): v is { [key: string]: Value } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Raw);
}

/** Every container-and-key of a tree: where a mutation can land. */
function slots(v: Value, out: Array<[Value[] | { [key: string]: Value }, string | number]> = []): typeof out {
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      out.push([v, i]);
      slots(item, out);
    });
  } else if (isMapping(v)) {
    for (const key of Object.keys(v)) {
      out.push([v, key]);
      slots(v[key], out);
    }
  }
  return out;
}

/** A deep copy that keeps Raw scalars (arbitraries share their values between runs). */
function clone(v: Value): Value {
  if (Array.isArray(v)) return v.map(clone);
  if (!isMapping(v)) return v;
  const out: { [key: string]: Value } = {};
  for (const key of Object.keys(v))
    Object.defineProperty(out, key, { value: clone(v[key]), enumerable: true, writable: true, configurable: true });
  return out;
}

function mutate(base: Value, mutations: Mutation[]): Value {
  const tree = clone(base);
  for (const m of mutations) {
    const all = slots(tree);
    if (all.length === 0) break;
    const [container, key] = all[m.at % all.length];
    if (m.op === 'replace') (container as Record<string | number, Value>)[key] = clone(m.value);
    else if (m.op === 'delete') {
      if (Array.isArray(container)) container.splice(key as number, 1);
      else delete container[key as string];
    } else {
      const target = (container as Record<string | number, Value>)[key]!;
      // defineProperty: `__proto__` must become a key of the file, not this tree's prototype.
      const into = isMapping(target) ? target : Array.isArray(container) ? undefined : container;
      if (into)
        Object.defineProperty(into, m.key, {
          value: clone(m.value),
          enumerable: true,
          writable: true,
          configurable: true,
        });
    }
  }
  return tree;
}

/** Block-style YAML: keys and strings double-quoted, Raw scalars as written. */
function toYaml(v: Value, indent = 0): string {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v))
    return v.length === 0 ? ' []' : v.map((item) => `\n${pad}-${toYaml(item, indent + 2)}`).join('');
  if (isMapping(v)) {
    const keys = Object.keys(v);
    return keys.length === 0
      ? ' {}'
      : keys.map((k) => `\n${pad}${JSON.stringify(k)}:${toYaml(v[k], indent + 2)}`).join('');
  }
  return ` ${scalar(v)}`;
}

function scalar(v: Raw | string | number | boolean | null): string {
  if (v instanceof Raw) return v.text;
  if (v === null) return '~';
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/** A shipped config with one to four mutations, as YAML text. */
export const mutatedConfig: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...BASES.keys()), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([base, mutations]) => toYaml(mutate(BASES[base], mutations)).trimStart() + '\n');

/** Text from YAML's own punctuation and our keys: mostly invalid, sometimes surprising. */
export const yamlSoup: fc.Arbitrary<string> = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        ':',
        ': ',
        '- ',
        '\n',
        '\n  ',
        '\n    ',
        ' ',
        '&a ',
        '*a',
        '&b ',
        '*b',
        '<<: ',
        '{',
        '}',
        '[',
        ']',
        ',',
        '"',
        "'",
        '|',
        '>',
        '!!str ',
        '!!map ',
        '!!binary ',
        '!!js/regexp ',
        '%YAML 1.2\n',
        '---\n',
        '...\n',
        '#',
        '? ',
        '\t',
        '\\',
        '\u0000',
        '\ufeff',
        'workers',
        'modules',
        'engine',
        'cluster',
        'name',
        'config',
        'iii-http',
        'iii-worker-manager',
        'port',
        'node_id',
        'redis_url',
        '__proto__',
        'constructor',
        '${',
        '}',
        '${HOME}',
        '${X:1}',
        '3111',
        '1e400',
        '~',
        'true',
      ),
      fc.string({ maxLength: 6 }),
    ),
    { maxLength: 40 },
  )
  .map((tokens) => tokens.join(''));

/**
 * Alias bombs: each level is a list (or mapping) of `fanout` aliases of the level below, so
 * the last one stands for fanout^levels leaves, written in a few hundred bytes.
 */
export const aliasBomb: fc.Arbitrary<{ text: string; leaves: number }> = fc
  .record({
    levels: fc.integer({ min: 2, max: 40 }),
    fanout: fc.integer({ min: 2, max: 10 }),
    asMapping: fc.boolean(),
    merge: fc.boolean(),
    where: fc.constantFrom('engine', 'state', 'top'),
  })
  .map(({ levels, fanout, asMapping, merge, where }) => {
    const lines = [`l0: &l0 ${asMapping ? '{a: lol, b: lol}' : '[lol, lol]'}`];
    for (let i = 1; i < levels; i++) {
      const refs = Array.from({ length: fanout }, (_, j) =>
        asMapping ? (merge && j === 0 ? `<<: *l${i - 1}` : `k${j}: *l${i - 1}`) : `*l${i - 1}`,
      );
      lines.push(`l${i}: &l${i} ${asMapping ? `{${refs.join(', ')}}` : `[${refs.join(', ')}]`}`);
    }
    // Leaves of the last level alone (merge keys collapse duplicates, so this is an upper bound).
    const leaves = 2 * fanout ** (levels - 1);
    if (where === 'top') return { text: lines.join('\n') + '\n', leaves };
    if (where === 'engine') return { text: `engine:\n${lines.map((l) => `  ${l}`).join('\n')}\n`, leaves };
    const text = `workers:\n  - name: iii-state\n    config:\n      adapter:\n        name: kv\n        config:\n${lines.map((l) => `          ${l}`).join('\n')}\n`;
    return { text, leaves };
  });

/** Environment variables the loader reads, and placeholder names, with hostile values. */
export const hostileEnv: fc.Arbitrary<NodeJS.ProcessEnv> = fc
  .array(
    fc.tuple(
      fc.constantFrom(
        'III_WS_PORT',
        'III_HTTP_PORT',
        'III_STREAM_PORT',
        'III_METRICS_PORT',
        'III_NODE_ID',
        'LOG_LEVEL',
        'III_REDIS_URL',
        'III_REDIS_KEY_PREFIX',
        'III_ADVERTISE_HOST',
        'III_DRAIN_GRACE_MS',
        'HOME',
        'X',
        'SERVICE_VERSION',
      ),
      fc.oneof(
        hostileString.filter((s) => s.length < 2_000),
        numberToken,
        fc.constantFrom(
          '0',
          '65536',
          '-1',
          ' 80 ',
          '0x50',
          'redis://',
          'rediss://:pw@h:1',
          'redis://[::1',
          'silent',
          'LOUD',
          '${X}',
        ),
      ),
    ),
    { maxLength: 4 },
  )
  .map((pairs) => Object.fromEntries(pairs));
