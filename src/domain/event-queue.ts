import { approximateEventBytes } from './event-size.js';
import type { PresenceEvent } from './presence.js';

/**
 * A first-in first-out queue of presence events with O(1) push and shift at any length (an array
 * with a moving head, compacted now and then), releasing each event as it leaves. It keeps the
 * approximate encoded size of what it holds (see approximateEventBytes), so a bound can be in bytes
 * as well as in events.
 */
export class EventQueue {
  private items: (PresenceEvent | undefined)[] = [];
  private head = 0;
  private heldBytes = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  /** Approximate encoded bytes of the events queued. */
  get bytes(): number {
    return this.heldBytes;
  }

  push(event: PresenceEvent): void {
    this.items.push(event);
    this.heldBytes += approximateEventBytes(event);
  }

  peek(): PresenceEvent | undefined {
    return this.items[this.head];
  }

  shift(): PresenceEvent | undefined {
    if (this.head === this.items.length) return undefined;
    const event = this.items[this.head]!;
    this.items[this.head++] = undefined;
    this.heldBytes -= approximateEventBytes(event);
    if (this.head === this.items.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return event;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
    this.heldBytes = 0;
  }
}
