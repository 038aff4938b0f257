/**
 * A field of a message can hold its value as the JSON text it arrived in. A node that only passes
 * a payload on (in a cross-node call, the serving node frames the call's data for its worker and
 * the calling node frames the result for its caller) then writes that text into the next frame
 * and never parses it; anyone who reads the field gets the parsed value, parsed once on first read.
 *
 * The text is a string, or the bytes it arrived as (UTF-8): a large payload then goes from one
 * socket to the next without being decoded to a string and encoded again.
 *
 * One field per object; `encode` (codec.ts) and the bus codec (cluster/bus-codec.ts) write it.
 */

const TEXT = Symbol('json text');

/** JSON text, as a string or as its UTF-8 bytes. */
export type JsonText = string | Buffer;

interface HeldText {
  key: string;
  text: JsonText;
}

type Fields = Record<string | symbol, unknown>;

/** Makes `target[key]` the value of the JSON `text`, parsed on first read. */
export function withJsonText<T extends object>(target: T, key: string, text: JsonText): T {
  let value: unknown;
  let parsed = false;
  Object.defineProperty(target, key, {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!parsed) {
        value = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'));
        parsed = true;
      }
      return value;
    },
    // A field given a new value holds that value; the text no longer says it.
    set(this: Fields, next: unknown) {
      Object.defineProperty(this, key, { value: next, writable: true, enumerable: true, configurable: true });
      delete this[TEXT];
    },
  });
  // Not enumerable: a spread copy gets the parsed value and no stale text.
  Object.defineProperty(target, TEXT, { value: { key, text } satisfies HeldText, configurable: true });
  return target;
}

/** The field `target` holds as JSON text, if any. */
export function heldText(target: object): HeldText | undefined {
  return (target as Fields)[TEXT] as HeldText | undefined;
}

/** Sets `to[key]` to `from[key]`, as text when `from` holds it so (unparsed); leaves it unset when undefined. */
export function copyJson(from: object, to: object, key: string): void {
  const held = heldText(from);
  if (held?.key === key) {
    withJsonText(to, key, held.text);
    return;
  }
  const value = (from as Fields)[key];
  if (value !== undefined) (to as Fields)[key] = value;
}

/** `target` without `key` (own enumerable fields, shallow), never reading `key`. */
export function without(target: object, key: string): Record<string, unknown> {
  const rest: Record<string, unknown> = {};
  for (const name of Object.keys(target)) if (name !== key) rest[name] = (target as Fields)[name];
  return rest;
}

/** The JSON of `message`, its field held as text written as that text (bytes if it is held as bytes). */
export function stringifyHeld(message: object): JsonText {
  const held = heldText(message);
  if (!held) return JSON.stringify(message);
  return withField(JSON.stringify(without(message, held.key)), held.key, held.text);
}

/** `objectJson` (the JSON of an object) with the field `key` added, its value the JSON `text`. */
export function withField(objectJson: string, key: string, text: string): string;
export function withField(objectJson: string, key: string, text: JsonText): JsonText;
export function withField(objectJson: string, key: string, text: JsonText): JsonText {
  const head = `${objectJson.slice(0, -1)}${objectJson.length > 2 ? ',' : ''}${JSON.stringify(key)}:`;
  return typeof text === 'string' ? `${head}${text}}` : Buffer.concat([Buffer.from(head), text, CLOSE_BRACE]);
}

const CLOSE_BRACE = Buffer.from('}');
