import type { Database, Key } from 'lmdb';

/** A row as stored: the value and the place of its key in first-write order. */
export interface OrderedRow<V> {
  seq: number;
  value: V;
}

/**
 * A named database of the embedded store whose rows come back in the order their keys were
 * first written (keys are arrays of strings, which LMDB itself sorts), as the in-memory maps of
 * state and stream keep them: rewriting a key keeps its place. Each write resolves once its
 * transaction is committed.
 */
export class OrderedTable<V> {
  /** The sequence number of every stored key, by its JSON text. */
  private readonly seqs = new Map<string, number>();
  private nextSeq = 1;

  constructor(private readonly db: Database<OrderedRow<V>, Key>) {}

  /** Every row, in first-write order. Call once, before any write. */
  load(): Array<{ key: string[]; value: V }> {
    const rows: Array<{ key: string[]; row: OrderedRow<V> }> = [];
    for (const { key, value } of this.db.getRange()) rows.push({ key: key as string[], row: value });
    rows.sort((a, b) => a.row.seq - b.row.seq);
    for (const { key, row } of rows) {
      this.seqs.set(JSON.stringify(key), row.seq);
      this.nextSeq = Math.max(this.nextSeq, row.seq + 1);
    }
    return rows.map(({ key, row }) => ({ key, value: row.value }));
  }

  async put(key: string[], value: V): Promise<void> {
    const id = JSON.stringify(key);
    let seq = this.seqs.get(id);
    if (seq === undefined) this.seqs.set(id, (seq = this.nextSeq++));
    await this.db.put(key, { seq, value });
  }

  async remove(key: string[]): Promise<void> {
    this.seqs.delete(JSON.stringify(key));
    await this.db.remove(key);
  }
}
