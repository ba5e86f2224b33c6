import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Rate, RateLimiter } from '../../src/domain/rate-limiter.js';

/**
 * The behaviour every RateLimiter must have (see src/domain/rate-limiter.ts; the token bucket is
 * described in src/limits/memory-rate-limiter.ts). Run it from a `*.test.ts` file with a factory
 * that returns a fresh limiter for each call:
 *
 *   describeRateLimiter('MemoryRateLimiter', async () => new MemoryRateLimiter());
 *
 * Time is real (a Redis limiter uses the server's clock), with rates small enough that a token
 * comes back every 100 ms. A check that a call is refused only holds while no token can have come
 * back, so each such span is timed: a run slowed past a token's time by a loaded machine proves
 * nothing and is retried on a fresh key (see `conclusive`). Waiting longer never breaks a check
 * that a call is admitted, so those are not timed.
 */
export function describeRateLimiter(name: string, factory: () => Promise<RateLimiter>): void {
  describe(`RateLimiter contract: ${name}`, () => {
    const rate: Rate = { perSecond: 10, burst: 5 };
    const intervalMs = 1000 / rate.perSecond;
    /** The hint is whole ms, rounded up; allow for that. */
    const hintSlackMs = 2;
    let limiter: RateLimiter;
    let keys = 0;

    beforeEach(async () => {
      limiter = await factory();
    });

    afterEach(async () => {
      await limiter.close();
    });

    /** A caller key no other run uses (Redis limiters of one suite may share a prefix). */
    function freshKey(): string {
      return `caller-${++keys}-${Math.random().toString(36).slice(2)}`;
    }

    /** `count` calls of one key sent together; their answers in order. */
    function together(key: string, count: number, r: Rate = rate): Promise<number[]> {
      return Promise.all(Array.from({ length: count }, () => limiter.consume(key, r)));
    }

    /** True while less than `ms` has passed since `since` (performance.now()). */
    function within(since: number, ms: number): boolean {
      return performance.now() - since < ms;
    }

    /**
     * Runs `attempt` on fresh keys until a run is not spoiled by a slow machine (it returns
     * undefined when a span it timed took too long), and returns that run's result.
     */
    async function conclusive<T>(attempt: (key: string) => Promise<T | undefined>): Promise<T> {
      for (let run = 1; run <= 5; run++) {
        const result = await attempt(freshKey());
        if (result !== undefined) return result;
      }
      throw new Error('every run was slowed past a token’s time: the machine is too loaded to check refusals');
    }

    /** Waits at least `ms` by the monotonic clock (a timer alone may fire a little early). */
    async function waitAtLeast(ms: number): Promise<void> {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, Math.max(1, until - performance.now())));
      }
    }

    it('admits `burst` calls at once and refuses the next with a hint of at most one token’s time', async () => {
      const answers = await conclusive(async (key) => {
        const since = performance.now();
        const answers = await together(key, rate.burst + 1);
        return within(since, intervalMs) ? answers : undefined;
      });

      expect(answers.slice(0, rate.burst)).toEqual(Array(rate.burst).fill(0));
      const hint = answers[rate.burst]!;
      expect(hint).toBeGreaterThan(0);
      expect(hint).toBeLessThanOrEqual(intervalMs + hintSlackMs);
    });

    it('admits the call again once the hint has passed, and refuses the one after it', async () => {
      const { hint, again, after } = await conclusive(async (key) => {
        const since = performance.now();
        await together(key, rate.burst);
        const hint = await limiter.consume(key, rate);
        if (!within(since, intervalMs)) return undefined;
        // The token after the one the hint promises comes back a full interval later.
        const askedAt = performance.now();
        await waitAtLeast(hint);
        const again = await limiter.consume(key, rate);
        const after = await limiter.consume(key, rate);
        return within(askedAt, hint + intervalMs) ? { hint, again, after } : undefined;
      });

      expect(hint).toBeGreaterThan(0);
      expect(again).toBe(0);
      expect(after).toBeGreaterThan(0);
    });

    it('takes no token for a refused call: the earliest hint still holds after more refusals', async () => {
      const { key, hints } = await conclusive(async (key) => {
        const since = performance.now();
        await together(key, rate.burst);
        const hints = await together(key, 3);
        return within(since, intervalMs) ? { key, hints } : undefined;
      });
      expect(hints.every((hint) => hint > 0)).toBe(true);

      await waitAtLeast(Math.min(...hints));

      expect(await limiter.consume(key, rate)).toBe(0);
    });

    it('refills to `burst` and no further: an idle key gets `burst` at once again, not more', async () => {
      const answers = await conclusive(async (key) => {
        await together(key, rate.burst);
        await waitAtLeast(rate.burst * intervalMs + 3 * intervalMs);
        const since = performance.now();
        const answers = await together(key, rate.burst + 1);
        return within(since, intervalMs) ? answers : undefined;
      });

      expect(answers.slice(0, rate.burst)).toEqual(Array(rate.burst).fill(0));
      expect(answers[rate.burst]).toBeGreaterThan(0);
    });

    it('keeps keys apart: one caller over its rate leaves another untouched', async () => {
      const quiet = freshKey();
      const busyHint = await conclusive(async (busy) => {
        const since = performance.now();
        await together(busy, rate.burst);
        const hint = await limiter.consume(busy, rate);
        return within(since, intervalMs) ? hint : undefined;
      });
      expect(busyHint).toBeGreaterThan(0);

      expect(await together(quiet, rate.burst)).toEqual(Array(rate.burst).fill(0));
    });

    it('keeps rates apart: the same key under another rate (another scope) has its own bucket', async () => {
      const other: Rate = { perSecond: 5, burst: 3 };
      const [mine, theirs] = await conclusive(async (key) => {
        const since = performance.now();
        const answers = await Promise.all([together(key, rate.burst + 1), together(key, other.burst + 1, other)]);
        return within(since, intervalMs) ? answers : undefined;
      });

      expect(mine.slice(0, rate.burst)).toEqual(Array(rate.burst).fill(0));
      expect(mine[rate.burst]).toBeGreaterThan(0);
      expect(theirs.slice(0, other.burst)).toEqual(Array(other.burst).fill(0));
      expect(theirs[other.burst]).toBeGreaterThan(0);
      expect(theirs[other.burst]).toBeLessThanOrEqual(1000 / other.perSecond + hintSlackMs);
    });

    it('admits a caller sending a steady stream about `perSecond` times a second after its burst, never more', async () => {
      const key = freshKey();
      const started = performance.now();
      await together(key, rate.burst);
      const streamFrom = performance.now();
      let admitted = 0;
      let lastAskedAt = streamFrom;

      while (performance.now() - streamFrom < 5 * intervalMs) {
        lastAskedAt = performance.now();
        if ((await limiter.consume(key, rate)) === 0) admitted++;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const elapsedMs = performance.now() - started;

      // Never more tokens than came back since the bucket was emptied; and every one that came
      // back before the last call was taken, bar one still on its way and one a stall left behind.
      expect(admitted).toBeLessThanOrEqual(Math.floor(elapsedMs / intervalMs));
      expect(admitted).toBeGreaterThanOrEqual(Math.floor((lastAskedAt - streamFrom) / intervalMs) - 2);
    });

    it('rejects a rate no bucket can honour with a RangeError naming the field', async () => {
      await expect(limiter.consume(freshKey(), { perSecond: 0, burst: 5 })).rejects.toThrow(/perSecond/);
      await expect(limiter.consume(freshKey(), { perSecond: 10, burst: 0 })).rejects.toThrow(/burst/);
      await expect(limiter.consume(freshKey(), { perSecond: 10, burst: 2.5 })).rejects.toBeInstanceOf(RangeError);
    });
  });
}
