import type { Json } from '../../protocol/messages';

/**
 * The event message of iii-modules.md §9.3, delivered alike to `stream` triggers and to
 * subscribed WebSocket clients. The camelCase keys are the original's (and the SDK's
 * `StreamChangeEvent`).
 */
export type StreamEventDetail =
  | { type: 'sync'; data: Json }
  | { type: 'create'; data: Json }
  | { type: 'update'; data: Json }
  | { type: 'delete'; data: Json }
  | { type: 'event'; event: { type: string; data: Json } }
  | { type: 'unauthorized' };

export type StreamEvent = {
  type: 'stream';
  /** Milliseconds since the epoch. */
  timestamp: number;
  streamName: string;
  groupId: string;
  /** The item the event is about; null for group-wide events (a `send` without id, a group sync). */
  id: string | null;
  event: StreamEventDetail;
};

export function streamEvent(
  streamName: string,
  groupId: string,
  id: string | null,
  event: StreamEventDetail,
): StreamEvent {
  return { type: 'stream', timestamp: Date.now(), streamName, groupId, id, event };
}
