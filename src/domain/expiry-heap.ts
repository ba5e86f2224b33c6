/** What the heap keeps on each item: its place in the heap (-1 while not in it). */
export interface HeapItem {
  heapIndex: number;
  readonly expiresAtMs: number;
  /** Breaks ties: of two items due at once, the older one comes first. */
  readonly seq: number;
}

const OUT = -1;

/**
 * A min-heap of items by expiry that can also take out any item (each knows its index), so an
 * acked message or a receipt put again leaves it at once instead of lingering until its old
 * expiry. O(log n) each. Shared by the memory adapters that expire what they hold (inbox, receipts).
 */
export class ExpiryHeap<T extends HeapItem> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(item: T): void {
    item.heapIndex = this.items.length;
    this.items.push(item);
    this.up(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i === OUT || this.items[i] !== item) return;
    const last = this.items.pop()!;
    item.heapIndex = OUT;
    if (last === item) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.up(i);
    this.down(last.heapIndex);
  }

  clear(): void {
    for (const item of this.items) item.heapIndex = OUT;
    this.items.length = 0;
  }

  private before(a: T, b: T): boolean {
    return a.expiresAtMs < b.expiresAtMs || (a.expiresAtMs === b.expiresAtMs && a.seq < b.seq);
  }

  private up(i: number): void {
    const { items } = this;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(items[i]!, items[parent]!)) return;
      this.swap(i, parent);
      i = parent;
    }
  }

  private down(i: number): void {
    const { items } = this;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let first = i;
      if (left < items.length && this.before(items[left]!, items[first]!)) first = left;
      if (right < items.length && this.before(items[right]!, items[first]!)) first = right;
      if (first === i) return;
      this.swap(i, first);
      i = first;
    }
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!;
    const b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    a.heapIndex = j;
    b.heapIndex = i;
  }
}
