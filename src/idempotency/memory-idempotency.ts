import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Cancellation } from '../domain/cancellation.js';
import { ExpiryHeap, type HeapItem } from '../domain/expiry-heap.js';
import type { IdempotencyClaim, IdempotencyStore } from '../domain/idempotency.js';
import { PushgateError } from '../errors.js';

/** setTimeout's longest wait; a later end is reached in steps. */
const MAX_TIMER_MS = 2_147_483_647;
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

/** An entry is never changed in place: completing a lease replaces it. `expiresAtMs` is when it ends. */
interface Held extends HeapItem {
  readonly key: string;
}

interface Running extends Held {
  readonly kind: 'running';
  readonly token: string;
  /** The `waitFor`s of this lease, made on the first one. */
  waiters: Set<Waiter> | undefined;
}

interface Done extends Held {
  readonly kind: 'done';
  readonly result: string;
}

type Entry = Running | Done;

/**
 * The single-node IdempotencyStore: a Map of key → entry (a running lease or a done result), on the
 * monotonic clock. Entries wait for their end in an expiry heap, which an entry leaves as it is replaced or
 * removed: each claim takes out what has ended, with no scan, and
 * while a `waitFor` waits, one unref'd timer for the earliest end tells waiters of a lapsed lease
 * on time (an idle store holds no timer, so remembered results stay until the next claim). A `waitFor` is told by the call that settles its key (complete, release) in the same
 * turn, and by the heap's timer when the lease lapses: no timer of its own.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  /** In claim order, which is end order for remembered results (one window for all). */
  private readonly entries = new Map<string, Entry>();
  private readonly ends = new ExpiryHeap<Entry>();
  /** Orders entries ending in the same ms (the heap's tie-break). */
  private lastSeq = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires; Infinity while there is none. */
  private timerAtMs = Number.POSITIVE_INFINITY;
  private waiting = 0;
  private closed = false;
  private readonly maxKeys: number;

  /**
   * `maxKeys` bounds what a node remembers: the reliability suite's churn run at 500 pushes a second
   * held 150,000 results (about 150 MB) with the default 300 s window, and the held memory grows with
   * rate × window. Past it, the oldest remembered results are forgotten early (a repeat of one is
   * delivered again); running leases are never dropped.
   */
  constructor({ maxKeys = 100_000 }: { maxKeys?: number } = {}) {
    if (!(Number.isSafeInteger(maxKeys) && maxKeys > 0)) throw new RangeError(`maxKeys must be a positive integer, got ${maxKeys}`);
    this.maxKeys = maxKeys;
  }

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
    this.hold({ kind: 'running', key, token, expiresAtMs: now + leaseMs, seq: ++this.lastSeq, heapIndex: -1, waiters: undefined });
    return { kind: 'first', token };
  }

  async complete(key: string, token: string, result: string, windowMs: number): Promise<void> {
    this.checkOpen();
    requireDurationMs('windowMs', windowMs);
    const now = performance.now();
    const entry = this.live(key, now);
    if (entry?.kind !== 'running' || entry.token !== token) return;
    this.hold({ kind: 'done', key, result, expiresAtMs: now + windowMs, seq: ++this.lastSeq, heapIndex: -1 });
    settle(entry, result);
    this.forgetOldestOverCap();
  }

  async release(key: string, token: string): Promise<void> {
    this.checkOpen();
    const entry = this.live(key, performance.now());
    if (entry?.kind !== 'running' || entry.token !== token) return;
    this.forget(entry);
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
    this.ends.clear();
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
    if (entry === undefined || entry.expiresAtMs > now) return entry;
    this.expire(entry);
    return undefined;
  }

  private expire(entry: Entry): void {
    this.forget(entry);
    if (entry.kind === 'running') settle(entry, undefined);
  }

  private forget(entry: Entry): void {
    this.entries.delete(entry.key);
    this.ends.remove(entry);
  }

  /** Holds `entry` in place of the key's current one (which leaves the heap with it). */
  private hold(entry: Entry): void {
    const replaced = this.entries.get(entry.key);
    if (replaced !== undefined) this.ends.remove(replaced);
    this.entries.set(entry.key, entry);
    this.ends.push(entry);
    this.arm();
  }

  /** Forgets the oldest remembered results while more keys than `maxKeys` are held. */
  private forgetOldestOverCap(): void {
    for (const entry of this.entries.values()) {
      if (this.entries.size <= this.maxKeys) return;
      if (entry.kind === 'done') this.forget(entry);
    }
  }

  /** Expires every entry whose end has come by `now`. */
  private expireDue(now: number): void {
    for (let due = this.ends.peek(); due !== undefined && due.expiresAtMs <= now; due = this.ends.peek()) this.expire(due);
  }

  /**
   * Sets the timer for the earliest end unless it is already set for it or sooner. Only while a
   * `waitFor` waits: an end nobody waits on is found by the next claim (expireDue), so an idle
   * store holds no timer.
   */
  private arm(): void {
    if (this.waiting === 0) return;
    const next = this.ends.peek()?.expiresAtMs;
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
}

/** Tells every waiter of a lease how it ended. */
function settle(entry: Running, result: string | undefined): void {
  const waiters = entry.waiters;
  if (waiters === undefined) return;
  entry.waiters = undefined;
  for (const waiter of waiters) waiter.settle(result);
}
