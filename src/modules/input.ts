import { EngineError, ErrorCode } from '../protocol/errors';
import type { Json } from '../protocol/messages';

/**
 * Reading a built-in function's input. The original answers a payload that does not fit with
 * `deserialization_error` ("Failed to deserialize input for <id>: ..."); unknown fields (such as
 * the injected `_caller_worker_id`) are ignored.
 */
export class Input {
  private readonly obj: Record<string, Json>;

  constructor(
    private readonly functionId: string,
    data: Json,
  ) {
    if (typeof data !== 'object' || data === null || Array.isArray(data)) throw this.fail('expected an object');
    this.obj = data;
  }

  /** Every field, as a shallow copy (to pass the input on). */
  fields(): Record<string, Json> {
    return { ...this.obj };
  }

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  raw(key: string): Json | undefined {
    const v = this.obj[key];
    return v === null ? undefined : v;
  }

  string(key: string): string {
    const v = this.optString(key);
    if (v === undefined) throw this.fail(`missing field \`${key}\``);
    return v;
  }

  optString(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.fail(`field \`${key}\` must be a string`);
    return v;
  }

  optBoolean(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw this.fail(`field \`${key}\` must be a boolean`);
    return v;
  }

  optNumber(key: string): number | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw this.fail(`field \`${key}\` must be a number`);
    return v;
  }

  /** An unsigned 32-bit integer, like a process id. */
  optU32(key: string): number | undefined {
    const v = this.optNumber(key);
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xffffffff))
      throw this.fail(`field \`${key}\` must be an integer from 0 to 4294967295`);
    return v;
  }

  optStringArray(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((item) => typeof item !== 'string'))
      throw this.fail(`field \`${key}\` must be an array of strings`);
    return v as string[];
  }

  fail(detail: string): EngineError {
    return new EngineError(
      ErrorCode.deserializationError,
      `Failed to deserialize input for ${this.functionId}: ${detail}`,
    );
  }
}
