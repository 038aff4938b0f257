import { describeValue, isPlainObject } from '../../config/formats';
import type { Json } from '../../protocol/messages';

/**
 * What an RBAC auth function decides about one connection (iii-protocol.md §3.7), with the
 * original's defaults filled in. Without an auth function a connection gets `PERMISSIVE`.
 */
export interface AuthResult {
  allowedFunctions: string[];
  forbiddenFunctions: string[];
  /** Trigger types the connection may bind; undefined = all. */
  allowedTriggerTypes?: string[];
  allowTriggerTypeRegistration: boolean;
  allowFunctionRegistration: boolean;
  /** Handed to the middleware and the registration hooks. */
  context: Json;
  /** Registered ids become `<prefix>::<id>`; undefined (or '') = no prefix. */
  functionRegistrationPrefix?: string;
}

/** The session of a connection on a port without an auth function: everything allowed. */
export const PERMISSIVE: AuthResult = {
  allowedFunctions: [],
  forbiddenFunctions: [],
  allowTriggerTypeRegistration: true,
  allowFunctionRegistration: true,
  context: {},
};

/** An auth function's answer that does not fit the AuthResult shape. */
export class AuthResultError extends Error {}

/**
 * Reads an auth function's result. Absent and `null` fields take their defaults (as everywhere
 * in the protocol); unknown fields are ignored; a field of the wrong type is an AuthResultError
 * naming it. `allow_trigger_type_registration` defaults to false here, unlike PERMISSIVE.
 */
export function parseAuthResult(value: Json | undefined): AuthResult {
  if (value === undefined || value === null) throw new AuthResultError('auth function returned no result');
  if (!isPlainObject(value))
    throw new AuthResultError(`auth function result: expected an object, got ${describeValue(value)}`);
  const result: AuthResult = {
    allowedFunctions: strings(value, 'allowed_functions') ?? [],
    forbiddenFunctions: strings(value, 'forbidden_functions') ?? [],
    allowTriggerTypeRegistration: boolean(value, 'allow_trigger_type_registration') ?? false,
    allowFunctionRegistration: boolean(value, 'allow_function_registration') ?? true,
    context: value['context'] ?? {},
  };
  const types = strings(value, 'allowed_trigger_types');
  if (types !== undefined) result.allowedTriggerTypes = types;
  const prefix = value['function_registration_prefix'];
  if (typeof prefix === 'string' && prefix !== '') result.functionRegistrationPrefix = prefix;
  else if (prefix !== undefined && prefix !== null && prefix !== '')
    throw wrong('function_registration_prefix', 'a string', prefix);
  return result;
}

function strings(obj: Record<string, Json>, key: string): string[] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw wrong(key, 'a list of strings', v);
  return v;
}

function boolean(obj: Record<string, Json>, key: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw wrong(key, 'true or false', v);
  return v;
}

function wrong(key: string, expected: string, got: unknown): AuthResultError {
  return new AuthResultError(`auth function result: ${key}: expected ${expected}, got ${describeValue(got)}`);
}
