import type {
  ErrorBody,
  HttpAuth,
  HttpInvocation,
  InboundMessage,
  InvokeAction,
  Json,
  OutboundMessage,
} from './messages';
import { stringifyHeld, type JsonText } from './json-text';

/** ws send options for a frame of UTF-8 bytes that is text (ws sends a Buffer as binary otherwise). */
export const TEXT_FRAME = { binary: false } as const;

/**
 * Decoding of worker frames. The reference engine drops any frame it cannot parse without a
 * word; we answer a frame that names an invocation with an `invocationresult` error and report
 * everything else to the caller of `decodeFrame` so it can be logged (docs/PROTOCOL.md).
 */

export type TelemetrySignal = 'OTLP' | 'MTRC' | 'LOGS';

export type Decoded =
  | { kind: 'message'; message: InboundMessage }
  | { kind: 'skip' }
  | { kind: 'telemetry'; signal: TelemetrySignal; body: Buffer }
  | { kind: 'invalid'; reason: string; correlation?: { invocation_id: string; function_id: string } };

/** serde_json's nesting limit, kept so a frame the original refuses is refused here too. */
export const MAX_JSON_DEPTH = 128;

const TELEMETRY_PREFIXES: readonly TelemetrySignal[] = ['OTLP', 'MTRC', 'LOGS'];

class InvalidField extends Error {}

type Obj = Record<string, unknown>;

export function decodeFrame(data: Buffer | string, isBinary: boolean): Decoded {
  let text: string;
  if (isBinary && typeof data !== 'string') {
    const signal = telemetrySignal(data);
    if (signal) return { kind: 'telemetry', signal, body: data.subarray(4) };
    text = data.toString('utf8');
  } else {
    text = typeof data === 'string' ? data : data.toString('utf8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    // Empty and whitespace-only frames are skipped, as the original does (checked only here, off the hot path).
    if (text.trim() === '') return { kind: 'skip' };
    return { kind: 'invalid', reason: `invalid JSON: ${(err as Error).message}` };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { kind: 'invalid', reason: 'a message must be a JSON object' };
  }
  const obj = parsed as Obj;
  try {
    // Nesting deeper than the limit needs at least two characters per level.
    if (text.length > 2 * MAX_JSON_DEPTH && depthExceeds(obj, MAX_JSON_DEPTH))
      throw new InvalidField(`JSON nesting deeper than ${MAX_JSON_DEPTH} levels`);
    return { kind: 'message', message: toMessage(obj) };
  } catch (err) {
    if (!(err instanceof InvalidField)) throw err;
    const invalid: Decoded = { kind: 'invalid', reason: err.message };
    if (obj.type === 'invokefunction' && typeof obj.invocation_id === 'string' && obj.invocation_id !== '') {
      invalid.correlation = {
        invocation_id: obj.invocation_id,
        function_id: typeof obj.function_id === 'string' ? obj.function_id : '',
      };
    }
    return invalid;
  }
}

/** The signal of a binary telemetry frame (4-byte ASCII prefix), or undefined for anything else. */
export function telemetrySignal(frame: Buffer): TelemetrySignal | undefined {
  if (frame.length < 4) return undefined;
  const prefix = frame.toString('latin1', 0, 4) as TelemetrySignal;
  return TELEMETRY_PREFIXES.includes(prefix) ? prefix : undefined;
}

/**
 * A frame's JSON; a payload held as text (json-text.ts) is written as it arrived. Bytes when that
 * payload is held as bytes: send them as a text frame (`TEXT_FRAME`).
 */
export function encode(message: OutboundMessage): JsonText {
  return stringifyHeld(message);
}

function toMessage(o: Obj): InboundMessage {
  const type = o.type;
  switch (type) {
    case 'registerfunction': {
      const id = reqString(o, 'id');
      return withOptional(
        { type, id },
        {
          description: optString(o, 'description'),
          request_format: optJson(o, 'request_format'),
          response_format: optJson(o, 'response_format'),
          metadata: optJson(o, 'metadata'),
          invocation: o.invocation == null ? undefined : toInvocation(o.invocation),
        },
      );
    }
    case 'unregisterfunction':
      return { type, id: reqString(o, 'id') };
    case 'invokefunction': {
      const function_id = reqString(o, 'function_id');
      return withOptional(
        // Missing `data` is a parse failure in the original (the SDK drops the key for an
        // undefined payload); we take it as null so such calls work instead of hanging.
        { type, function_id, data: (o.data ?? null) as Json },
        {
          invocation_id: optUuid(o, 'invocation_id'),
          traceparent: optString(o, 'traceparent'),
          baggage: optString(o, 'baggage'),
          action: toAction(o.action),
          metadata: optJson(o, 'metadata'),
          namespace: optString(o, 'namespace'),
        },
      );
    }
    case 'invocationresult':
      return withOptional(
        { type, invocation_id: reqString(o, 'invocation_id'), function_id: reqString(o, 'function_id') },
        {
          result: optJson(o, 'result'),
          error: o.error == null ? undefined : toErrorBody(o.error, 'error'),
          traceparent: optString(o, 'traceparent'),
          baggage: optString(o, 'baggage'),
        },
      );
    case 'registertriggertype':
      return withOptional(
        { type, id: reqString(o, 'id'), description: reqString(o, 'description') },
        {
          trigger_request_format: optJson(o, 'trigger_request_format'),
          call_request_format: optJson(o, 'call_request_format'),
          namespace: optString(o, 'namespace'),
        },
      );
    case 'unregistertriggertype':
      return withOptional({ type, id: reqString(o, 'id') }, { namespace: optString(o, 'namespace') });
    case 'registertrigger':
      return withOptional(
        {
          type,
          id: reqString(o, 'id'),
          trigger_type: reqString(o, 'trigger_type'),
          function_id: reqString(o, 'function_id'),
          config: (o.config ?? null) as Json,
        },
        {
          metadata: optJson(o, 'metadata'),
          namespace: optString(o, 'namespace'),
          trigger_namespace: optString(o, 'trigger_namespace'),
        },
      );
    case 'unregistertrigger':
      return withOptional({ type, id: reqString(o, 'id') }, { trigger_type: optString(o, 'trigger_type') });
    case 'triggerregistrationresult':
      return withOptional(
        {
          type,
          id: reqString(o, 'id'),
          trigger_type: reqString(o, 'trigger_type'),
          function_id: reqString(o, 'function_id'),
        },
        { error: o.error == null ? undefined : toErrorBody(o.error, 'error') },
      );
    case 'workerregistered':
      return { type, worker_id: reqString(o, 'worker_id'), reattach_token: optString(o, 'reattach_token') ?? '' };
    case 'reattach':
      return withOptional(
        { type, previous_worker_id: reqString(o, 'previous_worker_id') },
        { reattach_token: optString(o, 'reattach_token') },
      );
    case 'registerservice':
      return withOptional(
        { type, id: reqString(o, 'id') },
        {
          name: optString(o, 'name'),
          description: optString(o, 'description'),
          parent_service_id: optString(o, 'parent_service_id'),
        },
      );
    case 'ping':
    case 'pong':
      return { type };
    default:
      throw new InvalidField(
        typeof type === 'string' ? `unknown message type ${quoted(type)}` : 'missing string field "type"',
      );
  }
}

/** Longest piece of a frame quoted in a reason: reasons are logged, a 16 MB `type` must not be. */
const MAX_QUOTED_CHARS = 64;

/** `value` as a JSON string, cut to MAX_QUOTED_CHARS characters with a note of its length. */
function quoted(value: string): string {
  if (value.length <= MAX_QUOTED_CHARS) return JSON.stringify(value);
  return `${JSON.stringify(value.slice(0, MAX_QUOTED_CHARS))}... (${value.length} characters)`;
}

/** Copies the defined optional fields onto the message, so absent and null stay absent. */
function withOptional<T extends object>(base: T, optional: Record<string, unknown>): T {
  const out = base as Record<string, unknown>;
  for (const key in optional) if (optional[key] !== undefined) out[key] = optional[key];
  return base;
}

function reqString(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new InvalidField(`field "${key}" must be a string`);
  return v;
}

function optString(o: Obj, key: string): string | undefined {
  const v = o[key];
  if (v == null) return undefined;
  if (typeof v !== 'string') throw new InvalidField(`field "${key}" must be a string when present`);
  return v;
}

function optJson(o: Obj, key: string): Json | undefined {
  const v = o[key];
  return v == null ? undefined : (v as Json);
}

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

function optUuid(o: Obj, key: string): string | undefined {
  const v = optString(o, key);
  if (v !== undefined && !UUID.test(v)) throw new InvalidField(`field "${key}" must be a UUID`);
  return v;
}

function toAction(v: unknown): InvokeAction | undefined {
  if (v == null) return undefined;
  if (typeof v !== 'object') throw new InvalidField('field "action" must be an object');
  const a = v as Obj;
  if (a.type === 'void') return { type: 'void' };
  if (a.type === 'enqueue') {
    if (typeof a.queue !== 'string') throw new InvalidField('enqueue action needs a string "queue"');
    return { type: 'enqueue', queue: a.queue };
  }
  throw new InvalidField('field "action.type" must be "void" or "enqueue"');
}

function toErrorBody(v: unknown, key: string): ErrorBody {
  if (typeof v !== 'object' || v === null) throw new InvalidField(`field "${key}" must be an object`);
  const e = v as Obj;
  const body: ErrorBody = { code: reqString(e, 'code'), message: reqString(e, 'message') };
  const stack = optString(e, 'stacktrace');
  if (stack !== undefined) body.stacktrace = stack;
  return body;
}

const METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']);

function toInvocation(v: unknown): HttpInvocation {
  if (typeof v !== 'object' || v === null) throw new InvalidField('field "invocation" must be an object');
  const i = v as Obj;
  const method = optString(i, 'method') ?? 'POST';
  if (!METHODS.has(method)) throw new InvalidField('field "invocation.method" must be GET, POST, PUT, PATCH or DELETE');
  const out: HttpInvocation = { url: reqString(i, 'url'), method: method as HttpInvocation['method'] };
  if (i.timeout_ms != null) {
    if (typeof i.timeout_ms !== 'number' || !Number.isInteger(i.timeout_ms) || i.timeout_ms <= 0) {
      throw new InvalidField('field "invocation.timeout_ms" must be a positive integer');
    }
    out.timeout_ms = i.timeout_ms;
  }
  if (i.headers != null) {
    if (typeof i.headers !== 'object' || Array.isArray(i.headers))
      throw new InvalidField('field "invocation.headers" must be an object');
    for (const value of Object.values(i.headers as Obj)) {
      if (typeof value !== 'string') throw new InvalidField('field "invocation.headers" must map names to strings');
    }
    out.headers = i.headers as Record<string, string>;
  }
  if (i.auth != null) out.auth = toAuth(i.auth);
  return out;
}

function toAuth(v: unknown): HttpAuth {
  if (typeof v !== 'object' || v === null) throw new InvalidField('field "invocation.auth" must be an object');
  const a = v as Obj;
  switch (a.type) {
    case 'bearer':
      return { type: 'bearer', token_key: reqString(a, 'token_key') };
    case 'hmac':
      return { type: 'hmac', secret_key: reqString(a, 'secret_key') };
    case 'api_key':
      return { type: 'api_key', header: reqString(a, 'header'), value_key: reqString(a, 'value_key') };
    default:
      throw new InvalidField('field "invocation.auth.type" must be bearer, hmac or api_key');
  }
}

/** True when `value` nests objects/arrays deeper than `limit` (iterative: no stack risk). */
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
