import { PushgateError } from '../errors.js';

/**
 * Every wait of a call listens to the call's signal: the reply wait, the registry lookup, each
 * node's delivery. EventTarget listeners are costly to add and remove (several µs each on the push
 * hot path), so a signal gets one real listener, on first use, that runs a plain set of callbacks;
 * adding and removing a callback is then a Set operation. The listener goes with the signal.
 */
const hubs = new WeakMap<AbortSignal, Set<() => void>>();

/**
 * Runs `callback` once when `signal` aborts (not at all if it already has: check `aborted` first).
 * Returns the function that stops listening; call it when the wait ends, whatever the outcome.
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let hub = hubs.get(signal);
  if (hub === undefined) {
    const callbacks = new Set<() => void>();
    hub = callbacks;
    hubs.set(signal, callbacks);
    signal.addEventListener(
      'abort',
      () => {
        // A callback may stop another (a wait that ends stops its siblings' listeners): skip those.
        for (const run of [...callbacks]) if (callbacks.has(run)) run();
        callbacks.clear();
      },
      { once: true },
    );
  }
  hub.add(callback);
  const callbacks = hub;
  return () => callbacks.delete(callback);
}

/**
 * Settles with `work`, or rejects as soon as `signal` aborts: a caller whose deadline passed stops
 * waiting at once, e.g. for a Redis that does not answer. (The work itself still ends on its own
 * bound, such as the Redis command timeout.)
 */
export function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const stop = onAbort(signal, () => reject(abortError(signal)));
    work.then(
      (value) => {
        stop();
        resolve(value);
      },
      (err: unknown) => {
        stop();
        reject(err);
      },
    );
  });
}

function abortError(signal: AbortSignal): unknown {
  return signal.reason instanceof PushgateError ? signal.reason : new PushgateError('cancelled', 'call cancelled or deadline exceeded');
}

/** Callbacks still listening to `signal` through onAbort: zero once every wait on it has ended (tests check). */
export function abortCallbacks(signal: AbortSignal): number {
  return hubs.get(signal)?.size ?? 0;
}
