import { heldText, withField, withJsonText, without, type JsonText } from '../protocol/json-text';
import type { BusMessage } from './messages';

/**
 * How bus messages are written (Redis pub/sub and direct links alike). A call's data and a
 * result's value travel after the message as the JSON text they were written in, so the node
 * that receives them does not parse them to frame them again (protocol/json-text.ts):
 *
 *     {"from":"node-a","message":{"type":"invoke",...},"payload":"data"}\n{"the":"data"}
 *
 * JSON.stringify never writes a newline, so the first one ends the header. A payload shorter
 * than SPLIT_MIN_CHARS, every other message, and every message to a node that does not announce
 * `wire: 2` (an earlier version, during a rolling upgrade) is one JSON object, as before.
 */
export const BUS_WIRE = 2;

/**
 * Below this many characters of payload a split frame costs more than it saves: keeping the
 * text costs the receiver about 1 µs (a lazily parsed field), parsing and serializing a 64-byte
 * payload again about 0.3 µs; a 4 KiB payload costs 10-20 µs to parse and serialize.
 */
export const SPLIT_MIN_CHARS = 1024;

/** Whether a node, as membership knows it, reads split frames (undefined: not seen yet, so no). */
export function readsSplit(peer: { wire?: number } | undefined): boolean {
  return (peer?.wire ?? 1) >= BUS_WIRE;
}

/** The payload field of each message that has one. */
type PayloadKey = 'data' | 'result';

interface Header {
  from?: string;
  message: BusMessage;
  payload?: PayloadKey;
}

const NEWLINE = 0x0a;

function payloadKey(message: BusMessage): PayloadKey | undefined {
  if (message.type === 'invoke') return 'data';
  if (message.type === 'result') return message.error === undefined ? 'result' : undefined;
  return undefined;
}

/**
 * `message` (with `from` when given) as one bus frame; split in header and payload text when
 * `split` (the receiving node reads wire 2).
 */
export function encodeBusMessage(message: BusMessage, from: string | undefined, split: boolean): JsonText {
  const key = split ? payloadKey(message) : undefined;
  const whole = (): string => JSON.stringify(from === undefined ? message : { from, message });
  if (key === undefined) return whole();
  const held = heldText(message);
  const text = held?.key === key ? held.text : JSON.stringify((message as unknown as Record<PayloadKey, unknown>)[key]);
  // An absent result (undefined) has no text.
  if (text === undefined) return whole();
  const rest = without(message, key);
  if (text.length < SPLIT_MIN_CHARS) {
    const body = withField(JSON.stringify(rest), key, typeof text === 'string' ? text : text.toString('utf8'));
    return from === undefined ? body : `{"from":${JSON.stringify(from)},"message":${body}}`;
  }
  const header: Header = { message: rest as unknown as BusMessage, payload: key };
  if (from !== undefined) header.from = from;
  const head = `${JSON.stringify(header)}\n`;
  return typeof text === 'string' ? `${head}${text}` : Buffer.concat([Buffer.from(head), text]);
}

/**
 * A frame written by `encodeBusMessage`, or undefined when it is one plain JSON value (the
 * caller reads it as it reads every frame of wire 1). Throws on a malformed frame.
 */
export function decodeSplitBusMessage(frame: Buffer): { message: BusMessage; from: string | undefined } | undefined {
  const end = frame.indexOf(NEWLINE);
  if (end < 0) return undefined;
  const header = JSON.parse(frame.toString('utf8', 0, end)) as Header;
  const key = header.payload;
  if (key !== 'data' && key !== 'result') throw new Error(`unknown bus payload field ${String(key)}`);
  if (typeof header.message !== 'object' || header.message === null) throw new Error('a bus header without a message');
  // The payload stays bytes: the next frame is written from them (protocol/json-text.ts).
  withJsonText(header.message, key, frame.subarray(end + 1));
  return { message: header.message, from: header.from };
}
