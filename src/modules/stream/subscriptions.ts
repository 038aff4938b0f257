import type { StreamEvent } from './events';

/** One joined subscription of one client connection. */
export interface Subscription<C> {
  client: C;
  subscriptionId: string;
  streamName: string;
  groupId: string;
  /** The item subscribed to; null for every item of the group. */
  id: string | null;
}

/**
 * Every client subscription of this node, indexed by stream and group so an event is matched
 * against its group's subscriptions only.
 */
export class SubscriptionIndex<C> {
  private readonly byGroup = new Map<string, Set<Subscription<C>>>();

  add(subscription: Subscription<C>): void {
    const key = groupKey(subscription.streamName, subscription.groupId);
    let set = this.byGroup.get(key);
    if (!set) this.byGroup.set(key, (set = new Set()));
    set.add(subscription);
  }

  remove(subscription: Subscription<C>): void {
    const key = groupKey(subscription.streamName, subscription.groupId);
    const set = this.byGroup.get(key);
    if (!set) return;
    set.delete(subscription);
    if (set.size === 0) this.byGroup.delete(key);
  }

  /**
   * The subscriptions an event goes to: same stream and group, and no item id or the event's.
   * A client with two overlapping subscriptions gets the event twice, as in the original:
   * messages carry no subscription id, so each subscription's copy is what the client expects.
   */
  matching(event: StreamEvent): Array<Subscription<C>> {
    const set = this.byGroup.get(groupKey(event.streamName, event.groupId));
    if (!set) return [];
    return [...set].filter((s) => s.id === null || s.id === event.id);
  }

  get size(): number {
    let n = 0;
    for (const set of this.byGroup.values()) n += set.size;
    return n;
  }
}

function groupKey(streamName: string, groupId: string): string {
  return `${streamName}\u0000${groupId}`;
}
