import type { Cancel } from '../domain/cancellation.js';
import { PushgateError } from '../errors.js';

/** A capped call: when it must end, and what to abort then. */
export interface CapEntry {
  readonly endsAt: number;
  readonly cancel: Cancel;
}

/**
 * The server's cap on how long a unary call may run (PUSHGATE_GRPC_MAX_CALL_MS), for calls that
 * come without a deadline or with a later one; it aborts the call's cancellation with
 * `deadline_exceeded`. One timer serves every call: each cap is the same length from its call's
 * start, so caps expire in the order the calls started. A Set in insertion order is the queue and
 * the timer only waits for its head; a call that ends leaves the Set and the timer alone. (A timer
 * per call cost a Timeout and a timer-list insert and removal on every push.)
 */
export class CallCaps {
  private readonly open = new Set<CapEntry>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly maxMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Caps the call unless its own deadline, `msLeft` from now, comes first; pass the entry to `release`. */
  add(msLeft: number, cancel: Cancel): CapEntry | undefined {
    if (msLeft <= this.maxMs) return undefined;
    const entry = { endsAt: this.now() + this.maxMs, cancel };
    this.open.add(entry);
    if (this.timer === undefined) this.arm(this.maxMs);
    return entry;
  }

  release(entry: CapEntry | undefined): void {
    if (entry !== undefined) this.open.delete(entry);
  }

  /** Calls capped and still running. */
  get size(): number {
    return this.open.size;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(this.expire, ms);
    // Never what keeps a node up: a running call holds its connection, and the connection the process.
    this.timer.unref();
  }

  private readonly expire = (): void => {
    this.timer = undefined;
    const now = this.now();
    for (const entry of this.open) {
      if (entry.endsAt > now) {
        this.arm(entry.endsAt - now);
        return;
      }
      this.open.delete(entry);
      entry.cancel.abort(capped(this.maxMs));
    }
  };
}

export function capped(maxMs: number): PushgateError {
  return new PushgateError('deadline_exceeded', `the call ran for ${maxMs} ms, the longest a call may take (PUSHGATE_GRPC_MAX_CALL_MS)`);
}
