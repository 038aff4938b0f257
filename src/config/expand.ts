import * as yaml from 'js-yaml';
import { ConfigError } from './errors';
import { isPlainObject } from './formats';
import { ENGINE_VERSION } from './version';

/**
 * YAML reading and `${VAR}` / `${VAR:default}` expansion (iii-modules.md §1.4).
 *
 * The original expands the raw text before parsing. We parse first and expand string leaves
 * (and keys) afterwards, so a value containing `:` or `#` cannot break the YAML. To keep the
 * original's typing, an *unquoted* scalar that is exactly one placeholder (`port: ${PORT:3111}`)
 * is re-typed from its expansion as YAML would type it (a number here), while a quoted one
 * (`port: "${PORT}"`) and a placeholder inside a longer string stay strings. Re-typing yields a
 * number, boolean, null (empty expansion), or a flow list/mapping (`[a, b]`, `{a: 1}`);
 * any other expansion stays the string it is.
 *
 * Known limit: inside a flow collection (`[a, ${X}]`) an unquoted placeholder breaks the YAML
 * (`{`/`}` are flow indicators there); quote it or use block style.
 */

/** NAME is anything but `}` and `:`; the default is anything but `}` and may be empty. */
const PLACEHOLDER = /\$\{([^}:]+)(?::([^}]*))?\}/g;
const EXACT_PLACEHOLDER = /^\$\{[^}:]+(?::[^}]*)?\}$/;

/** The default that stands for our version (`${SERVICE_VERSION:__III_ENGINE_VERSION__}`). */
export const ENGINE_VERSION_DEFAULT = '__III_ENGINE_VERSION__';

/**
 * Unquoted exact placeholders are tagged while parsing by prefixing this to the text: only plain
 * scalars go through implicit tag resolution, which is how quoted ones are told apart. The
 * expansion below strips it from every string and key, so it never leaves this file.
 */
const PLAIN_MARK = '\u0000iii-plain-placeholder\u0000';

const plainPlaceholderTag = yaml.defineScalarTag('tag:iii-cluster,2025:plain-placeholder', {
  implicit: true,
  implicitFirstChars: ['$'],
  resolve: (source: string) => (EXACT_PLACEHOLDER.test(source) ? PLAIN_MARK + source : yaml.NOT_RESOLVED),
  identify: () => false,
});

const READ_SCHEMA = yaml.CORE_SCHEMA.withTags(plainPlaceholderTag);

/** Parses one YAML document; an empty (or comments-only) file gives `undefined`. */
export function parseYaml(text: string, file: string): unknown {
  let documents: unknown[];
  try {
    documents = yaml.loadAll(text, { schema: READ_SCHEMA, filename: file });
  } catch (err) {
    if (err instanceof yaml.YAMLException) {
      const where = err.mark ? ` at line ${err.mark.line + 1}, column ${err.mark.column + 1}` : '';
      throw new ConfigError(`${file}: invalid YAML${where}: ${err.reason}`);
    }
    throw new ConfigError(`${file}: invalid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (documents.length > 1) {
    throw new ConfigError(`${file}: expected one YAML document, found ${documents.length} (separated by ---)`);
  }
  return documents[0];
}

/** Where a value sits, for messages: the file and the path inside it. */
interface Where {
  file: string;
  path: string;
}

/**
 * Values (scalars, lists and mappings) a config may hold once YAML aliases are expanded: an alias
 * is a reference, so ten levels of ten aliases ("billion laughs") parse from 300 bytes into a tree
 * of 10^10 values. A real config holds a few hundred; validating 10,000 takes about 0.3 s.
 */
export const MAX_CONFIG_VALUES = 10_000;

/** Nesting of lists and mappings a config may reach; the YAML parser stops at 100 without aliases. */
export const MAX_CONFIG_DEPTH = 128;

/** Expands every placeholder in `value` (a parsed YAML tree), returning a new tree. */
export function expandTree(value: unknown, env: NodeJS.ProcessEnv, file: string): unknown {
  assertBounded(value, file);
  const expanded = expandValue(value, env, { file, path: '' });
  // A placeholder typed as a list or mapping may carry aliases of its own.
  assertBounded(expanded, file);
  return expanded;
}

/**
 * Walks the tree as expansion would (an aliased node once per use), without recursion, and
 * stops at MAX_CONFIG_VALUES values or MAX_CONFIG_DEPTH levels: the cost is bounded whatever the
 * aliases (or a cycle) make of the tree.
 */
function assertBounded(root: unknown, file: string): void {
  const stack: Array<[unknown, number]> = [[root, 0]];
  let values = 0;
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (++values > MAX_CONFIG_VALUES) {
      throw new ConfigError(
        `${file}: the document expands to more than ${MAX_CONFIG_VALUES} values (YAML aliases are copied at every use; write the values out or use fewer aliases)`,
      );
    }
    const children = Array.isArray(value) ? value : isPlainObject(value) ? Object.values(value) : undefined;
    if (children === undefined) continue;
    if (depth + 1 > MAX_CONFIG_DEPTH)
      throw new ConfigError(`${file}: lists and mappings nest deeper than ${MAX_CONFIG_DEPTH} levels`);
    for (const child of children) stack.push([child, depth + 1]);
  }
}

function expandValue(value: unknown, env: NodeJS.ProcessEnv, where: Where): unknown {
  if (typeof value === 'string') {
    if (value.startsWith(PLAIN_MARK)) return retype(expandString(value.slice(PLAIN_MARK.length), env, where));
    return expandString(value, env, where);
  }
  if (Array.isArray(value)) {
    return value.map((item, i) => expandValue(item, env, { file: where.file, path: `${where.path}[${i}]` }));
  }
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [rawKey, item] of Object.entries(value)) {
      const keyWhere = { file: where.file, path: where.path ? `${where.path}.${rawKey}` : rawKey };
      const key = expandString(rawKey.startsWith(PLAIN_MARK) ? rawKey.slice(PLAIN_MARK.length) : rawKey, env, keyWhere);
      // Assigned, `__proto__` would replace the mapping's prototype instead of adding a key.
      if (key === '__proto__') throw new ConfigError(`${where.file}: ${keyWhere.path}: "__proto__" cannot be a key`);
      out[key] = expandValue(item, env, { file: where.file, path: where.path ? `${where.path}.${key}` : key });
    }
    return out;
  }
  return value;
}

/** Replaces each placeholder; a set variable (even empty) beats the default. */
export function expandString(text: string, env: NodeJS.ProcessEnv, where: Where): string {
  return text.replace(PLACEHOLDER, (_match, name: string, fallback: string | undefined) => {
    // Own variables only: `${constructor}` must not find Object.prototype.constructor.
    const set = Object.prototype.hasOwnProperty.call(env, name) ? env[name] : undefined;
    if (set !== undefined) return set;
    if (fallback !== undefined) return fallback === ENGINE_VERSION_DEFAULT ? ENGINE_VERSION : fallback;
    const at = where.path ? ` (at ${where.path})` : '';
    throw new ConfigError(`${where.file}: environment variable '${name}' is not set and has no default${at}`);
  });
}

/** Types an expanded unquoted placeholder the way YAML would have typed the raw text. */
function retype(expanded: string): unknown {
  if (expanded.trim() === '') return null;
  let typed: unknown;
  try {
    typed = yaml.load(expanded, { schema: yaml.CORE_SCHEMA });
  } catch {
    return expanded;
  }
  if (typeof typed === 'number' || typeof typed === 'boolean' || typed === null) return typed;
  if (typeof typed === 'object' && /^\s*[[{]/.test(expanded)) return typed;
  return expanded;
}
