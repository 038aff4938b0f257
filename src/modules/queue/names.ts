/**
 * Adapter-level queue names, as the original lays them out (iii-modules.md §6.2-§6.3), so a
 * shared backend sees familiar keys.
 */

/** A named function queue (`queue_configs`). */
export function namedQueueKey(name: string): string {
  return `__fn_queue::${name}`;
}

/** One subscribed function's copy of a topic (fan-out: one queue per distinct function). */
export function subscriberQueueKey(topic: string, functionId: string): string {
  return `${topic}::${functionId}`;
}

/** Messages published to a topic while it had no subscriber (ours: kept, bounded). */
export function topicBacklogKey(topic: string): string {
  return `__topic_backlog::${topic}`;
}
