/** setTimeout's longest wait; a later expiry is reached in steps. */
const MAX_TIMER_MS = 2_147_483_647;

/** Not in the clock. */
const UNWATCHED = -1;

/** What the clock keeps on each item it watches: the item's place in its heap (-1 while not watched). */
export interface Expiring {
  expiryIndex: number;
}

/**
 * One timer for many expiries: a min-heap of items by expiry time, with a single timer set for the
 * earliest. A timer per item (a Timeout, its list and its closures) was the largest part of
 * what an idle session cost beyond its socket; here an item costs two array slots and its index.
 * Each item is expired (`onExpired`) once its time has come, in order of expiry, and is out of
 * the clock by then. Every operation is O(log n).
 */
export class ExpiryClock<T extends Expiring> {
  private readonly items: T[] = [];
  /** Expiry of items[i], epoch ms (a separate array of numbers, so that no number is boxed per item). */
  private readonly due: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity while there is none. */
  private timerAtMs = Number.POSITIVE_INFINITY;

  constructor(private readonly onExpired: (item: T) => void) {}

  get size(): number {
    return this.items.length;
  }

  has(item: T): boolean {
    return item.expiryIndex !== UNWATCHED && this.items[item.expiryIndex] === item;
  }

  /** When `item` expires, or undefined if it is not watched. */
  expiryOf(item: T): number | undefined {
    return this.has(item) ? this.due[item.expiryIndex] : undefined;
  }

  /** Expires `item` at `atMs` (epoch ms), in place of any expiry it had. */
  watch(item: T, atMs: number): void {
    if (this.has(item)) {
      const i = item.expiryIndex;
      const earlier = atMs < this.due[i]!;
      this.due[i] = atMs;
      if (earlier) this.up(i);
      else this.down(i);
    } else {
      this.items.push(item);
      this.due.push(atMs);
      this.up(this.items.length - 1);
    }
    this.arm();
  }

  /** Stops watching `item`; nothing is left scheduled for it. */
  unwatch(item: T): void {
    if (!this.has(item)) return;
    const i = item.expiryIndex;
    const last = this.items.length - 1;
    item.expiryIndex = UNWATCHED;
    const moved = this.items.pop()!;
    const movedDue = this.due.pop()!;
    if (i !== last) {
      this.place(moved, movedDue, i);
      this.up(i);
      this.down(moved.expiryIndex);
    }
    // A timer set for an earlier item simply finds nothing due; only an empty clock drops it.
    if (this.items.length === 0) this.disarm();
  }

  /** Forgets every item without expiring any. */
  clear(): void {
    for (const item of this.items) item.expiryIndex = UNWATCHED;
    this.items.length = 0;
    this.due.length = 0;
    this.disarm();
  }

  /** Sets the timer for the earliest expiry if it is not already set for it or sooner. */
  private arm(): void {
    const next = this.due[0];
    if (next === undefined || next >= this.timerAtMs) return;
    clearTimeout(this.timer);
    this.timerAtMs = next;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.min(next - Date.now(), MAX_TIMER_MS)));
    // Sessions keep the process alive, not their expiry.
    this.timer.unref();
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAtMs = Number.POSITIVE_INFINITY;
    try {
      const now = Date.now();
      while (this.items.length > 0 && this.due[0]! <= now) {
        const item = this.items[0]!;
        this.unwatch(item);
        this.onExpired(item);
      }
    } finally {
      // Also after a throwing onExpired: the items still due are expired on the next turn.
      this.arm();
    }
  }

  private place(item: T, atMs: number, i: number): void {
    this.items[i] = item;
    this.due[i] = atMs;
    item.expiryIndex = i;
  }

  private up(i: number): void {
    const item = this.items[i]!;
    const atMs = this.due[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.due[parent]! <= atMs) break;
      this.place(this.items[parent]!, this.due[parent]!, i);
      i = parent;
    }
    this.place(item, atMs, i);
  }

  private down(i: number): void {
    const item = this.items[i]!;
    const atMs = this.due[i]!;
    const count = this.items.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= count) break;
      const right = left + 1;
      const child = right < count && this.due[right]! < this.due[left]! ? right : left;
      if (this.due[child]! >= atMs) break;
      this.place(this.items[child]!, this.due[child]!, i);
      i = child;
    }
    this.place(item, atMs, i);
  }
}
