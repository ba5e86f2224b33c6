import type { Cancellation } from './cancellation.js';

/**
 * Remembers pushes by message id for a window (PUSHGATE_IDEMPOTENCY_WINDOW_S), so a backend that
 * retries a push it is unsure about gets the first call's result instead of a second delivery.
 * The memory implementation serves one node; the Redis one is shared by the cluster.
 */
export type IdempotencyClaim =
  /** Nobody has this key: the caller runs the push, then `complete`s (or `release`s) with `token`. */
  | { readonly kind: 'first'; readonly token: string }
  /** A call with this key finished within the window: its result, as `complete` stored it. */
  | { readonly kind: 'done'; readonly result: string }
  /** A call with this key is still running: `waitFor` its result. */
  | { readonly kind: 'running' };

/**
 * Contract:
 * - `claim` is atomic across every node sharing the store: of concurrent claims of one key,
 *   exactly one gets `first`.
 * - A `first` claim holds for `leaseMs` unless completed or released: a node that died mid-push
 *   does not block its key for longer (the next claim after the lease is `first` again).
 * - `complete` and `release` act only while `token` still holds the key (a late completion after
 *   the lease passed and another call claimed it changes nothing).
 * - A result is kept for `windowMs` after `complete`, then forgotten.
 * - `waitFor` resolves with the result once the key completes, or undefined once it is released
 *   or its lease lapses (the caller then claims again); it rejects with the signal's reason when
 *   `signal` aborts, and leaves no timer or listener behind.
 * - `leaseMs` and `windowMs` are whole, positive milliseconds; other values reject with RangeError.
 * - `close()` ends pending waits (they reject with `shutting_down`); the store takes no calls afterwards.
 * - Calls that cannot reach the store reject with PushgateError `registry_unavailable` promptly.
 */
export interface IdempotencyStore {
  claim(key: string, leaseMs: number): Promise<IdempotencyClaim>;
  complete(key: string, token: string, result: string, windowMs: number): Promise<void>;
  release(key: string, token: string): Promise<void>;
  waitFor(key: string, signal: Cancellation): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * The key a push is remembered under: the same message id pushed to another user is another push.
 * The user id's length leads, so no user id and message id pair can spell another pair's key.
 */
export function idempotencyKey(userId: string, messageId: string): string {
  return `${userId.length}:${userId}${messageId}`;
}
