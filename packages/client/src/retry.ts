/** How a call that failed with UNAVAILABLE is tried again. */
export interface RetryOptions {
  /** Attempts in all, the first included; 1 turns retries off. Default 5. */
  readonly maxAttempts?: number;
  /** Wait before the first retry, in ms. Default 100. */
  readonly initialBackoffMs?: number;
  /** Longest wait between attempts, in ms. Default 5000. */
  readonly maxBackoffMs?: number;
  /** Factor the wait grows by per attempt. Default 2. */
  readonly multiplier?: number;
}

export type RetryPolicy = Required<RetryOptions>;

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ maxAttempts: 5, initialBackoffMs: 100, maxBackoffMs: 5000, multiplier: 2 });

export function retryPolicy(options: RetryOptions | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...options };
  for (const key of ['maxAttempts', 'initialBackoffMs', 'maxBackoffMs', 'multiplier'] as const) {
    const value = policy[key];
    if (!Number.isFinite(value) || value < (key === 'maxAttempts' || key === 'multiplier' ? 1 : 0)) {
      throw new TypeError(`retry.${key} must be a finite number ≥ ${key === 'maxAttempts' || key === 'multiplier' ? 1 : 0}, got ${value}`);
    }
  }
  return Object.freeze(policy);
}

/**
 * The wait before retry number `retry` (1 for the first retry): exponential, capped, with "full
 * jitter" (a random point below the cap) so many clients that lost the same node do not come
 * back in step.
 */
export function backoffMs(policy: RetryPolicy, retry: number): number {
  const ceiling = Math.min(policy.maxBackoffMs, policy.initialBackoffMs * policy.multiplier ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts; leaves no timer behind. */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
