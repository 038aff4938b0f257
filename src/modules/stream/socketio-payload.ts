import { ErrorCode } from '../../protocol/errors';
import { parseClientFrame, type ClientCommand } from './client-frames';

/** What a `join` or `leave` acknowledgement answers. */
export type SocketIoAck = { ok: true } | { ok: false; error: { code: string; message: string } };

export type ReadPayload<T> = { ok: true; value: T } | { ok: false; ack: SocketIoAck };

const JOIN_SHAPE = '{subscriptionId, streamName, groupId, id?}';

/**
 * Splits an event's arguments into the payload and the acknowledgement callback. Socket.IO puts
 * the callback last, so `emit('join', ack)` (no payload) hands the callback as the only argument.
 */
export function splitAck(args: unknown[]): { payload: unknown; ack: (answer: SocketIoAck) => void } {
  const last = args[args.length - 1];
  if (typeof last !== 'function') return { payload: args[0], ack: () => undefined };
  return {
    payload: args.length > 1 ? args[0] : undefined,
    ack: (answer) => (last as (answer: SocketIoAck) => void)(answer),
  };
}

/**
 * Reads a `join` payload with the raw port's own rules (client-frames.ts), so both transports
 * accept and refuse exactly the same subscriptions.
 */
export function readJoin(payload: unknown): ReadPayload<ClientCommand> {
  if (!isObject(payload)) return invalid(`join needs a payload object ${JOIN_SHAPE}`);
  const parsed = parseClientFrame(JSON.stringify({ type: 'join', data: payload }));
  if (parsed.kind === 'command') return { ok: true, value: parsed.command };
  return invalid(parsed.kind === 'invalid' ? parsed.message : `join needs a payload object ${JOIN_SHAPE}`);
}

/** A `leave` names the subscription only; the stream and group it was joined with are known. */
export function readLeave(payload: unknown): ReadPayload<string> {
  const subscriptionId = isObject(payload) ? payload['subscriptionId'] : undefined;
  if (typeof subscriptionId !== 'string' || subscriptionId === '')
    return invalid('leave needs a payload object {subscriptionId} with a non-empty string');
  return { ok: true, value: subscriptionId };
}

function invalid(message: string): { ok: false; ack: SocketIoAck } {
  return { ok: false, ack: { ok: false, error: { code: ErrorCode.invalidMessage, message } } };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
