import convict from 'convict';
import { ConfigError } from './errors';
import {
  describeValue,
  isLeaf,
  isPlainObject,
  registerFormats,
  ShapeError,
  type Leaf,
  type SchemaTree,
} from './formats';

/**
 * Validates one config block against its convict schema: `.load(block)` then
 * `.validate({allowed: 'strict'})`. Convict's own messages are rewritten into ours:
 * `<file>: <where>.<key>: expected ..., got ...`, one line per problem.
 *
 * Before convict sees the block we check what it handles badly: a mapping where a plain value
 * is expected (or the reverse) and required keys of the sections that are written. A `null`
 * section (`cors:` with nothing after it) counts as absent.
 */

export interface BlockLocation {
  /** The file, as named to the user (or "built-in defaults"). */
  file: string;
  /** Where the block sits: `workers[2] (iii-http).config`, `engine`. */
  where: string;
}

export interface ValidatedBlock {
  /** The keys as written, with values converted (a quoted "8080" port becomes 8080). */
  asWritten: Record<string, unknown>;
  /** Every key of the schema, defaults filled in. */
  resolved: Record<string, unknown>;
}

export function validateBlock(schema: SchemaTree, block: Record<string, unknown>, at: BlockLocation): ValidatedBlock {
  registerFormats();
  const input = dropNullSections(block, schema);
  const problems: Problem[] = [];
  precheck(input, schema, '', problems);
  if (problems.length > 0) throw toConfigError(problems, at);

  const conf = convict<Record<string, unknown>>(schema, { env: {}, args: [] });
  try {
    conf.load(input);
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw toConfigError(translateConvictError(err, schema), at);
  }
  const resolved = conf.getProperties();
  return { asWritten: pick(input, resolved, schema), resolved };
}

/** The full block with defaults, for a block that is already valid (modules' convenience). */
export function withDefaults(schema: SchemaTree, block: Record<string, unknown>): Record<string, unknown> {
  return validateBlock(schema, block, { file: '(module)', where: 'config' }).resolved;
}

/** The schema entry of `key`; never an inherited property (a `constructor:` key is unknown, not Object). */
function schemaNode(schema: SchemaTree, key: string): SchemaTree[string] | undefined {
  return Object.prototype.hasOwnProperty.call(schema, key) ? schema[key] : undefined;
}

interface Problem {
  key: string;
  message: string;
}

function toConfigError(problems: Problem[], at: BlockLocation): ConfigError {
  const seen = new Set<string>();
  const lines: string[] = [];
  for (const p of problems) {
    const line = `${at.file}: ${at.where}${p.key ? `.${p.key}` : ''}: ${p.message}`;
    if (!seen.has(line)) lines.push(line);
    seen.add(line);
  }
  return new ConfigError(lines.join('\n'));
}

function dropNullSections(block: Record<string, unknown>, schema: SchemaTree): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(block)) {
    const node = schemaNode(schema, key);
    if (node && !isLeaf(node)) {
      if (value === null) continue;
      out[key] = isPlainObject(value) ? dropNullSections(value, node) : value;
    } else {
      out[key] = value;
    }
  }
  return out;
}

function precheck(value: Record<string, unknown>, schema: SchemaTree, prefix: string, problems: Problem[]): void {
  for (const [key, node] of Object.entries(schema)) {
    const v = value[key];
    const path = `${prefix}${key}`;
    if (isLeaf(node)) {
      if (v === undefined) {
        if (node.required) problems.push({ key: path, message: `missing; expected ${node.shape.expected}` });
      } else if (node.format !== 'object' && isPlainObject(v)) {
        problems.push({ key: path, message: shapeMessage(node, v) });
      }
    } else if (v !== undefined) {
      if (isPlainObject(v)) precheck(v, node, `${path}.`, problems);
      else
        problems.push({
          key: path,
          message: `expected a mapping with keys ${Object.keys(node).join(', ')}, got ${describeValue(v)}`,
        });
    }
  }
}

function shapeMessage(node: Leaf, v: unknown): string {
  try {
    node.shape.assert(v, '');
  } catch (err) {
    if (err instanceof ShapeError) return err.message;
    throw err;
  }
  return `expected ${node.shape.expected}`;
}

/**
 * Convict reports every problem on its own line, in one of three forms:
 *   `<key>: <format message>: value was <json>`   (our formats write "expected ..., got ...")
 *   `configuration param '<key>' not declared in the schema`
 *   `configuration param '<key>' missing from config, did you override its parent?`
 * A format message that starts with a sub-path (`[1].function_id: expected ...`) continues the key.
 */
function translateConvictError(err: unknown, schema: SchemaTree): Problem[] {
  const text = err instanceof Error ? err.message : String(err);
  const problems: Problem[] = [];
  for (const line of text.split('\n')) {
    const undeclared = /^configuration param '(.+)' not declared in the schema$/.exec(line);
    if (undeclared) {
      problems.push(unknownKey(undeclared[1], schema));
      continue;
    }
    const missing = /^configuration param '(.+)' missing from config/.exec(line);
    if (missing) {
      problems.push({ key: missing[1], message: 'expected a mapping' });
      continue;
    }
    const invalid = /^([^:]+): (.*)$/.exec(line);
    if (invalid) {
      let key = invalid[1];
      let message = invalid[2].replace(/: value was .*$/, '');
      const sub = /^((?:\[\d+\]|\.[^.[:\s]+)+): (.*)$/.exec(message);
      if (sub) {
        key += sub[1];
        message = sub[2]!;
      }
      problems.push({ key, message });
      continue;
    }
    problems.push({ key: '', message: line });
  }
  return problems;
}

/** Reports the shallowest undeclared part of a dotted path, with the keys allowed there. */
function unknownKey(dotted: string, schema: SchemaTree): Problem {
  const parts = dotted.split('.');
  let node: SchemaTree = schema;
  const known: string[] = [];
  for (const part of parts) {
    const child = schemaNode(node, part);
    if (child === undefined) {
      const allowed = Object.keys(node);
      const expected = allowed.length > 0 ? `expected one of: ${allowed.join(', ')}` : 'this block takes no keys';
      return { key: [...known, part].join('.'), message: `unknown key (${expected})` };
    }
    known.push(part);
    if (isLeaf(child)) break;
    node = child;
  }
  return { key: dotted, message: 'unknown key' };
}

/**
 * Keeps the keys that were written, taking the converted values from convict. An optional key
 * written as null (`auth_function: ~`) means unset, so it is left out.
 */
function pick(
  input: Record<string, unknown>,
  resolved: Record<string, unknown>,
  schema: SchemaTree,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(input)) {
    const node = schemaNode(schema, key);
    const value = resolved[key];
    if (node && isLeaf(node) && node.nullable && value === null) continue;
    if (node && !isLeaf(node) && isPlainObject(input[key]) && isPlainObject(value)) {
      out[key] = pick(input[key], value, node);
    } else {
      out[key] = value;
    }
  }
  return out;
}
