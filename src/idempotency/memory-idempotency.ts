import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Cancellation } from '../domain/cancellation.js';
import type { IdempotencyClaim, IdempotencyStore } from '../domain/idempotency.js';
import { PushgateError } from '../errors.js';

/** setTimeout's longest wait; a later end is reached in steps. */
const MAX_TIMER_MS = 2_147_483_647;
/** Stale ends (of entries completed or released since) are dropped once they outnumber live entries by this much. */
const STALE_SLACK = 1024;
const RUNNING: IdempotencyClaim = Object.freeze({ kind: 'running' });

/** Throws RangeError unless `ms` is a whole, positive number of ms (what Redis PX takes). */
export function requireDurationMs(name: string, ms: number): void {
  if (!(Number.isSafeInteger(ms) && ms > 0)) throw new RangeError(`${name} must be a whole number of ms, at least 1, got ${ms}`);
}

/** What a store that was closed answers: its node is shutting down. */
export function closedError(): PushgateError {
  return new PushgateError('shutting_down', 'idempotency store closed');
}

interface Waiter {
  settle(result: string | undefined): void;
  fail(err: unknown): void;
}

interface Running {
  readonly kind: 'running';
  readonly token: string;
  readonly endsAtMs: number;
  /** The `waitFor`s of this lease, made on the first one. */
  waiters: Set<Waiter> | undefined;
}

interface Done {
  readonly kind: 'done';
  readonly result: string;
  readonly endsAtMs: number;
}

type Entry = Running | Done;

/** When an entry ends. Entries are never changed in place, so one that was replaced or removed is simply no longer in the map. */
interface End {
  readonly atMs: number;
  readonly key: string;
  readonly entry: Entry;
}

/**
 * The single-node IdempotencyStore: a Map of key → entry (a running lease or a done result), on the
 * monotonic clock. Ends wait in a min-heap: each claim takes out what has ended, with no scan, and
 * while a `waitFor` waits, one unref'd timer for the earliest end tells waiters of a lapsed lease
 * on time (an idle store holds no timer, so remembered results stay until the next claim). A `waitFor` is told by the call that settles its key (complete, release) in the same
 * turn, and by the heap's timer when the lease lapses: no timer of its own.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly ends: End[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity while there is none. */
  private timerAtMs = Number.POSITIVE_INFINITY;
  private waiting = 0;
  private closed = false;

  /** Keys held (running or done), for tests. */
  get size(): number {
    return this.entries.size;
  }

  /** `waitFor`s not yet settled, for tests: 0 once every wait has ended. */
  get pendingWaits(): number {
    return this.waiting;
  }

  async claim(key: string, leaseMs: number): Promise<IdempotencyClaim> {
    this.checkOpen();
    requireDurationMs('leaseMs', leaseMs);
    const now = performance.now();
    this.expireDue(now);
    const entry = this.live(key, now);
    if (entry?.kind === 'done') return { kind: 'done', result: entry.result };
    if (entry !== undefined) return RUNNING;
    const token = randomUUID();
    this.hold(key, { kind: 'running', token, endsAtMs: now + leaseMs, waiters: undefined });
    return { kind: 'first', token };
  }

  async complete(key: string, token: string, result: string, windowMs: number): Promise<void> {
    this.checkOpen();
    requireDurationMs('windowMs', windowMs);
    const now = performance.now();
    const entry = this.live(key, now);
    if (entry?.kind !== 'running' || entry.token !== token) return;
    this.hold(key, { kind: 'done', result, endsAtMs: now + windowMs });
    settle(entry, result);
  }

  async release(key: string, token: string): Promise<void> {
    this.checkOpen();
    const entry = this.live(key, performance.now());
    if (entry?.kind !== 'running' || entry.token !== token) return;
    this.entries.delete(key);
    settle(entry, undefined);
  }

  waitFor(key: string, signal: Cancellation): Promise<string | undefined> {
    if (this.closed) return Promise.reject(closedError());
    if (signal.aborted) return Promise.reject(signal.reason);
    const entry = this.live(key, performance.now());
    if (entry === undefined) return Promise.resolve(undefined);
    if (entry.kind === 'done') return Promise.resolve(entry.result);
    if (entry.waiters === undefined) entry.waiters = new Set();
    const waiters = entry.waiters;
    return new Promise((resolve, reject) => {
      const ended = (): void => {
        if (--this.waiting === 0) this.disarm();
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        settle: (result) => {
          ended();
          resolve(result);
        },
        fail: (err) => {
          ended();
          reject(err);
        },
      };
      const onAbort = (): void => {
        waiters.delete(waiter);
        waiter.fail(signal.reason);
      };
      waiters.add(waiter);
      this.waiting++;
      this.arm();
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Forgets every key; waits still pending reject with `shutting_down`. */
  async close(): Promise<void> {
    this.closed = true;
    this.disarm();
    const entries = [...this.entries.values()];
    this.entries.clear();
    this.ends.length = 0;
    for (const entry of entries) {
      if (entry.kind !== 'running' || entry.waiters === undefined) continue;
      const waiters = [...entry.waiters];
      entry.waiters.clear();
      for (const waiter of waiters) waiter.fail(closedError());
    }
  }

  private checkOpen(): void {
    if (this.closed) throw closedError();
  }

  /** The key's entry if it has not ended by `now`; an ended one is expired here, before its timer. */
  private live(key: string, now: number): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || entry.endsAtMs > now) return entry;
    this.expire(key, entry);
    return undefined;
  }

  private expire(key: string, entry: Entry): void {
    this.entries.delete(key);
    if (entry.kind === 'running') settle(entry, undefined);
  }

  private hold(key: string, entry: Entry): void {
    this.entries.set(key, entry);
    if (this.ends.length > 2 * this.entries.size + STALE_SLACK) this.dropStale();
    this.push({ atMs: entry.endsAtMs, key, entry });
    this.arm();
  }

  /** Expires every entry whose end has come by `now`. */
  private expireDue(now: number): void {
    while (this.ends.length > 0 && this.ends[0]!.atMs <= now) {
      const { key, entry } = this.pop();
      if (this.entries.get(key) === entry) this.expire(key, entry);
    }
  }

  /** Rebuilds the heap from the live entries only: ends of replaced or removed entries pile up under long leases that are released. */
  private dropStale(): void {
    const live = this.ends.filter((end) => this.entries.get(end.key) === end.entry);
    // A sorted array is a valid min-heap.
    live.sort((a, b) => a.atMs - b.atMs);
    this.ends.splice(0, this.ends.length, ...live);
  }

  /**
   * Sets the timer for the earliest end unless it is already set for it or sooner. Only while a
   * `waitFor` waits: an end nobody waits on is found by the next claim (expireDue), so an idle
   * store holds no timer.
   */
  private arm(): void {
    if (this.waiting === 0) return;
    const next = this.ends[0]?.atMs;
    if (next === undefined || next >= this.timerAtMs) return;
    clearTimeout(this.timer);
    this.timerAtMs = next;
    // Rounded up: a timer never fires before its delay, so the end has come when it does (checked again anyway).
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(1, Math.ceil(next - performance.now())), MAX_TIMER_MS));
    // Keys are memory, not work: they must not keep the process alive.
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
    this.expireDue(performance.now());
    this.arm();
  }

  private push(end: End): void {
    const ends = this.ends;
    let i = ends.length;
    ends.push(end);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (ends[parent]!.atMs <= end.atMs) break;
      ends[i] = ends[parent]!;
      i = parent;
    }
    ends[i] = end;
  }

  private pop(): End {
    const ends = this.ends;
    const top = ends[0]!;
    const last = ends.pop()!;
    if (ends.length === 0) return top;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= ends.length) break;
      const right = left + 1;
      const child = right < ends.length && ends[right]!.atMs < ends[left]!.atMs ? right : left;
      if (ends[child]!.atMs >= last.atMs) break;
      ends[i] = ends[child]!;
      i = child;
    }
    ends[i] = last;
    return top;
  }
}

/** Tells every waiter of a lease how it ended. */
function settle(entry: Running, result: string | undefined): void {
  const waiters = entry.waiters;
  if (waiters === undefined) return;
  entry.waiters = undefined;
  for (const waiter of waiters) waiter.settle(result);
}
