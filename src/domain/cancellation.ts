import { PushgateError } from '../errors.js';

/**
 * What the engine's waits need of a cancellation: whether it happened, why, and a listener told
 * once when it does. An `AbortSignal` is one; so is `Cancel`, which the hot paths use instead.
 */
export interface Cancellation {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * A cancellation and its trigger in one plain object, for the one made per call or per bus
 * request. Node 20 builds each AbortSignal slowly: it is an EventTarget whose prototype is swapped
 * afterwards, which leaves V8 a slow dictionary-mode object; making one and adding a listener cost
 * ~5 µs and more garbage than the rest of a push's bookkeeping (CPU profile of PushToUser). This
 * keeps the same contract for the methods above: listeners run once, in the order added, and a
 * listener added after the abort is never called (as with AbortSignal).
 */
export class Cancel implements Cancellation {
  aborted = false;
  reason: unknown = undefined;
  private listeners: (() => void)[] | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    if (this.listeners === undefined) this.listeners = [listener];
    else this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    if (listeners === undefined) return;
    const i = listeners.lastIndexOf(listener);
    if (i >= 0) listeners.splice(i, 1);
  }

  abort(reason: unknown = new PushgateError('cancelled', 'cancelled')): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.listeners;
    this.listeners = undefined;
    if (listeners === undefined) return;
    for (const listener of listeners) {
      try {
        listener();
      } catch (err) {
        // As an EventTarget does: one listener's failure does not keep the others from running, and is not swallowed.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** For waits nobody cancels (a replay to a session ends with the session, which the wait sees itself). */
export const NEVER_CANCELLED: Cancellation = Object.freeze({
  aborted: false,
  reason: undefined,
  addEventListener: () => {},
  removeEventListener: () => {},
});
