import type { Json } from '../../../protocol/messages';
import { applyUpdateOps } from '../../state/update-ops';
import type { ItemUpdate, StreamStorage, StreamSummary } from './storage';

type Group = Map<string, Json>;

/**
 * The `kv` adapter with `store_method: in_memory`: items in maps, lost at shutdown. Items keep
 * their first insertion order (a `set` on an existing item does not move it), as the original's.
 */
export class MemoryStreamStorage implements StreamStorage {
  private readonly streams = new Map<string, Map<string, Group>>();

  async get(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    return this.streams.get(streamName)?.get(groupId)?.get(itemId);
  }

  async set(streamName: string, groupId: string, itemId: string, value: Json): Promise<Json | undefined> {
    const group = this.groupFor(streamName, groupId);
    const old = group.get(itemId);
    group.set(itemId, value);
    await this.persist(streamName, groupId, itemId, value);
    return old;
  }

  async delete(streamName: string, groupId: string, itemId: string): Promise<Json | undefined> {
    const groups = this.streams.get(streamName);
    const group = groups?.get(groupId);
    if (!groups || !group) return undefined;
    const old = group.get(itemId);
    group.delete(itemId);
    // Empty groups and streams disappear, so list_groups and list_all show only what holds items.
    if (group.size === 0) groups.delete(groupId);
    if (groups.size === 0) this.streams.delete(streamName);
    if (old !== undefined) await this.persist(streamName, groupId, itemId, undefined);
    return old;
  }

  async update(streamName: string, groupId: string, itemId: string, ops: Json): Promise<ItemUpdate> {
    // No await between read and write: nothing can interleave, which is what makes it atomic here.
    const oldValue = this.streams.get(streamName)?.get(groupId)?.get(itemId);
    // applyUpdateOps works on a copy: the returned old value is the stored one, untouched.
    const { value, errors } = applyUpdateOps(oldValue, ops);
    this.groupFor(streamName, groupId).set(itemId, value);
    await this.persist(streamName, groupId, itemId, value);
    return { oldValue, newValue: value, errors };
  }

  async list(streamName: string, groupId: string): Promise<Json[]> {
    return [...(this.streams.get(streamName)?.get(groupId)?.values() ?? [])];
  }

  async listGroups(streamName: string): Promise<string[]> {
    return [...(this.streams.get(streamName)?.keys() ?? [])].sort();
  }

  async listAll(): Promise<StreamSummary[]> {
    return [...this.streams.entries()]
      .map(([id, groups]) => ({ id, groups: [...groups.keys()].sort() }))
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async close(): Promise<void> {
    this.streams.clear();
  }

  /**
   * Told of every change, after memory holds it (`value` undefined: the item was removed); the
   * call is acknowledged when this settles. The file storage writes it to its store.
   */
  protected persist(
    _streamName: string,
    _groupId: string,
    _itemId: string,
    _value: Json | undefined,
  ): Promise<void> | void {}

  protected groupFor(streamName: string, groupId: string): Group {
    let groups = this.streams.get(streamName);
    if (!groups) this.streams.set(streamName, (groups = new Map<string, Group>()));
    let group = groups.get(groupId);
    if (!group) groups.set(groupId, (group = new Map<string, Json>()));
    return group;
  }
}
