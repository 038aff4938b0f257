import type { Json } from '../../../protocol/messages';
import type { UpdateOpError } from '../../state/update-ops';

/** What `update` did: the value before (undefined when absent), after, and the ops that failed. */
export interface ItemUpdate {
  oldValue: Json | undefined;
  newValue: Json;
  errors: UpdateOpError[];
}

/** One stream and its groups, as `stream::list_all` shows them. */
export interface StreamSummary {
  id: string;
  /** Group ids, sorted. */
  groups: string[];
}

/**
 * Where stream items live: stream_name -> group_id -> item_id -> JSON value. Every method is
 * async so a networked backend (Redis, next issue) implements the same interface. Absent items
 * are `undefined`; empty groups and streams do not exist.
 */
export interface StreamStorage {
  get(streamName: string, groupId: string, itemId: string): Promise<Json | undefined>;
  /** Stores `value`; returns the value it replaced. */
  set(streamName: string, groupId: string, itemId: string, value: Json): Promise<Json | undefined>;
  /** Removes the item; returns the value removed. */
  delete(streamName: string, groupId: string, itemId: string): Promise<Json | undefined>;
  /** Applies update ops (iii-modules.md §8.3) atomically: no write lands between read and write. */
  update(streamName: string, groupId: string, itemId: string, ops: Json): Promise<ItemUpdate>;
  /** The group's item values, oldest first. */
  list(streamName: string, groupId: string): Promise<Json[]>;
  /** The stream's group ids, sorted. */
  listGroups(streamName: string): Promise<string[]>;
  /** Every stream with its groups, sorted by stream id. */
  listAll(): Promise<StreamSummary[]>;
  close(): Promise<void>;
}
