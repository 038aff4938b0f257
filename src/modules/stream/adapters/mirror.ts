import type { Json } from '../../../protocol/messages';
import type { StreamFollower } from '../interest';
import type { StreamEventHandler } from './event-bus';

/**
 * A backend whose items live on another engine, which reports every change back, whoever made
 * it (the bridge). The module then emits no event for writes to the storage (they come back
 * through `watch`, so each is delivered once), sends `stream::send` there, and tells it which
 * streams this node cares about (`follow` / `unfollow`): only their changes are reported.
 */
export interface StreamMirror extends StreamFollower {
  /** Hands every reported change to `onEvent`; called once, before the first `follow`. */
  watch(onEvent: StreamEventHandler): void;
  /** A group-wide or item event without storage, broadcast on the other engine. */
  send(streamName: string, groupId: string, id: string | null, event: { type: string; data: Json }): Promise<void>;
}
