import type { StreamEvent } from './events';

/**
 * Socket.IO room names of stream subscriptions. A group subscription sits in the group's room
 * `<stream>/<group>`; an item subscription in the item's room `<stream>/<group>/<id>`, so an
 * event goes to its group's room plus, when it is about an item, that item's room (the
 * `id === null || id === event.id` filter of the raw port, done by Socket.IO's rooms). Each part
 * is URI-encoded: a `/` inside a stream or group name cannot make two rooms collide.
 */
export function subscriptionRoom(streamName: string, groupId: string, id: string | null): string {
  const group = `${encodeURIComponent(streamName)}/${encodeURIComponent(groupId)}`;
  return id === null ? group : `${group}/${encodeURIComponent(id)}`;
}

/** The rooms an event is emitted to; a socket in several of them still gets it once. */
export function eventRooms(event: StreamEvent): string[] {
  const group = subscriptionRoom(event.streamName, event.groupId, null);
  return event.id === null ? [group] : [group, subscriptionRoom(event.streamName, event.groupId, event.id)];
}
