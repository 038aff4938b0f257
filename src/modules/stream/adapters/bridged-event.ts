import type { Json } from '../../../protocol/messages';
import type { StreamEvent, StreamEventDetail } from '../events';

/** The kinds of change a `stream` trigger reports (iii-modules.md §9.3, less the client-only ones). */
const CHANGE_TYPES = new Set(['create', 'update', 'delete', 'event']);

/**
 * The StreamEvent in what the other engine's `stream` trigger handed us: its payload is the
 * event message itself (ours and the original's, §9.3). Only the message's fields are kept (an
 * engine may add its own, such as `_caller_worker_id`); a timestamp missing or not a number is
 * replaced by now. Undefined when the payload is not a change event of a named stream and group.
 */
export function readBridgedEvent(payload: Json): StreamEvent | undefined {
  if (!isObject(payload) || payload['type'] !== 'stream') return undefined;
  const { streamName, groupId, id, timestamp, event } = payload;
  if (typeof streamName !== 'string' || typeof groupId !== 'string') return undefined;
  if (id !== undefined && id !== null && typeof id !== 'string') return undefined;
  const detail = readDetail(event);
  if (!detail) return undefined;
  return {
    type: 'stream',
    timestamp: typeof timestamp === 'number' && Number.isFinite(timestamp) ? timestamp : Date.now(),
    streamName,
    groupId,
    id: id ?? null,
    event: detail,
  };
}

function readDetail(event: Json | undefined): StreamEventDetail | undefined {
  if (!isObject(event) || typeof event['type'] !== 'string' || !CHANGE_TYPES.has(event['type'])) return undefined;
  if (event['type'] !== 'event')
    return { type: event['type'] as 'create' | 'update' | 'delete', data: event['data'] ?? null };
  const inner = event['event'];
  if (!isObject(inner) || typeof inner['type'] !== 'string') return undefined;
  return { type: 'event', event: { type: inner['type'], data: inner['data'] ?? null } };
}

function isObject(value: Json | undefined): value is Record<string, Json> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
