import type { Json } from '../../../protocol/messages';
import { EmbeddedStore } from '../../../store/embedded-store';
import { OrderedTable, type OrderedRow } from '../../../store/ordered-table';
import { MemoryStreamStorage } from './memory-storage';

/** The named database of iii-stream in the embedded store. */
const DB_NAME = 'stream';

/**
 * The `kv` adapter with `store_method: file_based`: items in memory for reads and in the
 * embedded store, each write committed before it is acknowledged. Rows are keyed
 * `[stream, group, item]`; groups list their items in first-insertion order after a restart.
 */
export class FileStreamStorage extends MemoryStreamStorage {
  private readonly table: OrderedTable<Json>;

  private constructor(private readonly store: EmbeddedStore) {
    super();
    this.table = new OrderedTable(store.db<OrderedRow<Json>>(DB_NAME));
    for (const {
      key: [streamName, groupId, itemId],
      value,
    } of this.table.load())
      this.groupFor(streamName, groupId).set(itemId, value);
  }

  /** Opens the store in `directory` (created if missing) and loads what it holds. */
  static open(directory: string): FileStreamStorage {
    return new FileStreamStorage(EmbeddedStore.open(directory));
  }

  protected override persist(
    streamName: string,
    groupId: string,
    itemId: string,
    value: Json | undefined,
  ): Promise<void> {
    const key = [streamName, groupId, itemId];
    return value === undefined ? this.table.remove(key) : this.table.put(key, value);
  }

  override async close(): Promise<void> {
    await super.close();
    await this.store.close();
  }
}
