/**
 * A binary min-heap by `readyAtMs`: messages backing off, earliest due first. Insert and
 * removal are O(log n), so a retry storm over a full queue (100 000 messages) stays cheap.
 */
export class DueHeap<T extends { readyAtMs: number }> {
  private readonly items: T[] = [];

  get length(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    const items = this.items;
    items.push(item);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (items[parent].readyAtMs <= item.readyAtMs) break;
      items[i] = items[parent]!;
      i = parent;
    }
    items[i] = item;
  }

  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && items[right].readyAtMs < items[left].readyAtMs ? right : left;
      if (items[child].readyAtMs >= last.readyAtMs) break;
      items[i] = items[child]!;
      i = child;
    }
    items[i] = last;
    return top;
  }

  /** Pops every item due at `nowMs`, earliest first. */
  *popDue(nowMs: number): IterableIterator<T> {
    while (this.items.length > 0 && this.items[0].readyAtMs <= nowMs) yield this.pop()!;
  }

  /** Removes and returns everything, in no particular order. */
  drain(): T[] {
    return this.items.splice(0);
  }

  [Symbol.iterator](): IterableIterator<T> {
    return this.items[Symbol.iterator]();
  }
}
