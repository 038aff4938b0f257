import fc from 'fast-check';
import { hostileValueText, jsonText, keyToken, nest, PROTOTYPE_KEYS } from './hostile-json';

/**
 * Worker-protocol frames built from a valid message of every inbound `type`
 * (src/protocol/messages.ts) with one to three fields mutated: replaced by a value of another
 * kind (or a deep one), deleted, duplicated, or joined by a prototype-reaching key. Nested
 * objects (`invocation`, `action`, `error`, `auth`) are mutated field by field too.
 */

/** A message as text pieces: a leaf is the JSON text of a value, an inner node an object. */
interface Template {
  [key: string]: string | Template;
}

const UUID = '"0b6a7f3e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"';
const s = (value: string): string => JSON.stringify(value);

/** One valid example of each message a worker may send. */
const TEMPLATES: Record<string, Template> = {
  registerfunction: {
    type: s('registerfunction'),
    id: s('svc::fn'),
    description: s('d'),
    request_format: '{"type":"object"}',
    response_format: '{}',
    metadata: '{"a":1}',
    invocation: {
      url: s('https://127.0.0.1:9/x'),
      method: s('POST'),
      timeout_ms: '1000',
      headers: '{"x-a":"b"}',
      auth: { type: s('bearer'), token_key: s('TOKEN') },
    },
  },
  unregisterfunction: { type: s('unregisterfunction'), id: s('svc::fn') },
  invokefunction: {
    type: s('invokefunction'),
    invocation_id: UUID,
    function_id: s('svc::fn'),
    data: '{"x":1}',
    traceparent: s('00-abc-def-01'),
    baggage: s('k=v'),
    action: { type: s('enqueue'), queue: s('q') },
    metadata: '{}',
  },
  invocationresult: {
    type: s('invocationresult'),
    invocation_id: UUID,
    function_id: s('svc::fn'),
    result: '[1,2]',
    error: { code: s('E'), message: s('m'), stacktrace: s('at x') },
    traceparent: s('t'),
    baggage: s('b'),
  },
  registertriggertype: {
    type: s('registertriggertype'),
    id: s('tt'),
    description: s('d'),
    trigger_request_format: '{}',
    call_request_format: '{}',
  },
  unregistertriggertype: { type: s('unregistertriggertype'), id: s('tt') },
  registertrigger: {
    type: s('registertrigger'),
    id: s('t1'),
    trigger_type: s('http'),
    function_id: s('svc::fn'),
    config: '{"api_path":"/x"}',
    metadata: '{}',
  },
  unregistertrigger: { type: s('unregistertrigger'), id: s('t1'), trigger_type: s('http') },
  triggerregistrationresult: {
    type: s('triggerregistrationresult'),
    id: s('t1'),
    trigger_type: s('http'),
    function_id: s('svc::fn'),
    error: { code: s('E'), message: s('m') },
  },
  workerregistered: { type: s('workerregistered'), worker_id: s('w'), reattach_token: s('r') },
  reattach: { type: s('reattach'), previous_worker_id: s('w'), reattach_token: s('r') },
  registerservice: {
    type: s('registerservice'),
    id: s('svc'),
    name: s('n'),
    description: s('d'),
    parent_service_id: s('p'),
  },
  ping: { type: s('ping') },
  pong: { type: s('pong') },
};

const MESSAGE_TYPES = Object.keys(TEMPLATES);

type Mutation =
  | { op: 'replace'; at: number; value: string }
  | { op: 'delete'; at: number }
  | { op: 'duplicate'; at: number; value: string }
  | { op: 'addKey'; at: number; key: string; value: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant('replace' as const), at: fc.nat(), value: hostileValueText }), weight: 5 },
  { arbitrary: fc.record({ op: fc.constant('delete' as const), at: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), value: jsonText }), weight: 1 },
  {
    arbitrary: fc.record({
      op: fc.constant('addKey' as const),
      at: fc.nat(),
      key: fc.oneof(
        fc.constantFrom(...PROTOTYPE_KEYS).map((k) => JSON.stringify(k)),
        keyToken,
      ),
      value: jsonText,
    }),
    weight: 2,
  },
);

/** Paths of every field (leaf or object) of a template: `[['invocation','auth','type'], ...]`. */
function paths(t: Template, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  for (const [key, value] of Object.entries(t)) {
    out.push([...prefix, key]);
    if (typeof value !== 'string') out.push(...paths(value, [...prefix, key]));
  }
  return out;
}

/** Objects as ordered entry lists, so keys can repeat. */
type Entries = Array<[string, string | Entries]>;

function toEntries(t: Template): Entries {
  return Object.entries(t).map(([k, v]) => [JSON.stringify(k), typeof v === 'string' ? v : toEntries(v)]);
}

function render(entries: Entries): string {
  return `{${entries.map(([k, v]) => `${k}:${typeof v === 'string' ? v : render(v)}`).join(',')}}`;
}

function apply(entries: Entries, path: string[], m: Mutation): void {
  const [head, ...rest] = path;
  const index = entries.findIndex(([k]) => k === JSON.stringify(head));
  if (index < 0) return;
  const child = entries[index][1];
  if (rest.length > 0) {
    if (typeof child !== 'string') apply(child, rest, m);
    return;
  }
  if (m.op === 'replace') entries[index] = [entries[index][0], m.value];
  else if (m.op === 'delete') entries.splice(index, 1);
  else if (m.op === 'duplicate') entries.push([entries[index][0], m.value]);
  else if (typeof child !== 'string') child.push([m.key, m.value]);
  else entries.push([m.key, m.value]);
}

/** A mutated message of `type`, as the text a worker would send. */
function mutatedMessage(type: string, mutations: Mutation[]): string {
  const template = TEMPLATES[type];
  const all = paths(template);
  const entries = toEntries(template);
  for (const m of mutations) apply(entries, all[m.at % all.length], m);
  return render(entries);
}

/** A message of every type, each with one to three mutations. */
export const mutatedWireMessage: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...MESSAGE_TYPES), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([type, mutations]) => mutatedMessage(type, mutations));

/** Fields of `invokefunction` whose values here always make the frame undecodable. */
const BREAKING: Record<string, readonly string[]> = {
  function_id: ['1', 'true', '[]', '{}', '1e400', '{"__proto__":{"x":1}}'],
  traceparent: ['1', 'false', '[""]', '{"a":"b"}'],
  baggage: ['0', '[]', '{}'],
  action: ['1', '"void"', '{"type":"nope"}', '{"type":"enqueue"}', '{"type":"enqueue","queue":1}'],
  // 129 levels inside the message object: one past the decoder's limit of 128.
  data: [nest(128, true), nest(128, false), nest(300, true)],
};

/**
 * An `invokefunction` with a string `invocation_id` (any string, not only UUIDs) that cannot be
 * decoded: the engine must answer it with an `invocationresult` error carrying that id.
 */
export const brokenInvokeFunction = (
  invocationId: fc.Arbitrary<string>,
): fc.Arbitrary<{ text: string; invocationId: string }> =>
  fc
    .tuple(invocationId, fc.constantFrom(...Object.keys(BREAKING)))
    .chain(([id, field]) => fc.constantFrom(...BREAKING[field]).map((bad) => ({ id, field, bad })))
    .map(({ id, field, bad }) => {
      const fields: Record<string, string> = {
        type: s('invokefunction'),
        invocation_id: JSON.stringify(id),
        function_id: s('svc::fn'),
        data: 'null',
      };
      fields[field] = bad;
      return {
        text: `{${Object.entries(fields)
          .map(([k, v]) => `${s(k)}:${v}`)
          .join(',')}}`,
        invocationId: id,
      };
    });
