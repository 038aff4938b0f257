import type { Json } from '../../protocol/messages';

/**
 * Reading OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding) as the
 * SDKs' JsonTraceSerializer & co. write it: ids in hex (base64 accepted too), 64-bit numbers as
 * decimal strings or numbers, attributes as `[{key, value: AnyValue}]`.
 */

export type JsonObject = { [key: string]: Json };

/** A frame or record that does not have the OTLP shape. */
export class OtlpShapeError extends Error {}

export function object(value: Json | undefined, what: string): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new OtlpShapeError(`${what} must be an object`);
  return value;
}

export function optObject(value: Json | undefined, what: string): JsonObject | undefined {
  return value === undefined || value === null ? undefined : object(value, what);
}

export function list(value: Json | undefined, what: string): Json[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new OtlpShapeError(`${what} must be an array`);
  return value;
}

export function optString(value: Json | undefined): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A 64-bit unsigned number (string or number) as a JS number; 0 when absent. */
export function uint64(value: Json | undefined, what: string): number {
  if (value === undefined || value === null) return 0;
  const n = typeof value === 'string' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0)
    throw new OtlpShapeError(`${what} must be a non-negative integer`);
  return n;
}

/** A trace id (16 bytes) or span id (8 bytes) as lower-case hex; undefined when absent or all zero. */
export function id(value: Json | undefined, bytes: 8 | 16, what: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new OtlpShapeError(`${what} must be a string`);
  let hex = value.toLowerCase();
  if (!/^[0-9a-f]+$/.test(hex) || hex.length !== bytes * 2) {
    const decoded = Buffer.from(value, 'base64');
    if (decoded.length !== bytes) throw new OtlpShapeError(`${what} must be ${bytes} bytes in hex or base64`);
    hex = decoded.toString('hex');
  }
  return /^0+$/.test(hex) ? undefined : hex;
}

/** An AnyValue as plain JSON. */
export function anyValue(value: Json | undefined): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  if (typeof value.stringValue === 'string') return value.stringValue;
  if (typeof value.boolValue === 'boolean') return value.boolValue;
  if (value.intValue !== undefined) return Number(value.intValue);
  if (value.doubleValue !== undefined) return Number(value.doubleValue);
  if (typeof value.bytesValue === 'string') return value.bytesValue;
  const array = optObject(value.arrayValue, 'arrayValue');
  if (array) return list(array.values, 'arrayValue.values').map(anyValue);
  const kv = optObject(value.kvlistValue, 'kvlistValue');
  if (kv) return attributes(kv.values);
  return null;
}

/** `[{key, value}]` as an object. */
export function attributes(value: Json | undefined): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const item of list(value, 'attributes')) {
    const kv = object(item, 'attribute');
    if (typeof kv.key === 'string') out[kv.key] = anyValue(kv.value);
  }
  return out;
}
