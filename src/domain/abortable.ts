import { PushgateError } from '../errors.js';
import type { Cancellation } from './cancellation.js';

/**
 * Settles with `work`, or rejects as soon as `signal` aborts: a caller whose deadline passed stops
 * waiting at once, e.g. for a Redis that does not answer. (The work itself still ends on its own
 * bound, such as the Redis command timeout.)
 */
export function untilAborted<T>(work: Promise<T>, signal: Cancellation): Promise<T> {
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(abortError(signal));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Why `signal` aborted, as the error a wait it ended rejects with. */
export function abortError(signal: Cancellation): unknown {
  return signal.reason instanceof PushgateError ? signal.reason : new PushgateError('cancelled', 'call cancelled or deadline exceeded');
}
