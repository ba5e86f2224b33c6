import { performance } from 'node:perf_hooks';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Cancellation } from '../../src/domain/cancellation.js';
import type { IdempotencyClaim, IdempotencyStore } from '../../src/domain/idempotency.js';
import { waitFor } from '../support/wait.js';

/** Stores for the nodes of one deployment, on storage no other test sees (a key prefix of its own). */
export interface IdempotencyDeployment {
  /** The store of one more node: each shares the others' keys (the memory store serves one node, so it hands out itself). */
  store(): Promise<IdempotencyStore>;
  /** Releases what the deployment holds (connections), after every store it handed out is closed. */
  close(): Promise<void>;
}

/**
 * The behaviour every IdempotencyStore must have (the contract comment in src/domain/idempotency.ts).
 * Run it from a `*.test.ts` file with a factory that returns a fresh deployment for each test:
 *
 *   describeIdempotencyStore('MemoryIdempotencyStore', async () => memoryDeployment());
 *
 * Leases and windows that must end within a test are short (200–300 ms); ones that must not end
 * are long (a minute), so a slow machine can only make a test slower, never wrong. Waits are bounded
 * by a generous deadline, not by fixed sleeps.
 */
export function describeIdempotencyStore(name: string, factory: () => Promise<IdempotencyDeployment>): void {
  describe(`IdempotencyStore contract: ${name}`, () => {
    const LONG_MS = 60_000;
    const SHORT_MS = 200;
    /** How late a wait may notice a change on a loaded machine (the Redis store polls at most every 100 ms). */
    const SLACK_MS = 1500;
    let deployment: IdempotencyDeployment;
    let store: IdempotencyStore;
    const opened = new Set<IdempotencyStore>();

    beforeEach(async () => {
      deployment = await factory();
      store = await node();
    });

    afterEach(async () => {
      for (const s of opened) await s.close();
      opened.clear();
      await deployment.close();
    });

    async function node(): Promise<IdempotencyStore> {
      const s = await deployment.store();
      opened.add(s);
      return s;
    }

    async function first(key: string, leaseMs = LONG_MS, on = store): Promise<string> {
      const claim = await on.claim(key, leaseMs);
      if (claim.kind !== 'first') throw new Error(`expected a first claim of ${JSON.stringify(key)}, got ${JSON.stringify(claim)}`);
      return claim.token;
    }

    /** How a promise ended and when (ms after `since`), without letting it reject unhandled. */
    async function outcome<T>(promise: Promise<T>, since: number): Promise<{ value?: T; error?: unknown; atMs: number }> {
      return promise.then(
        (value) => ({ value, atMs: performance.now() - since }),
        (error: unknown) => ({ error, atMs: performance.now() - since }),
      );
    }

    /** Timers that keep the process alive (unref'd ones, such as a store's clean-up timer, are not counted). */
    function liveTimers(): number {
      return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    }

    async function noTimerBeyond(baseline: number): Promise<void> {
      await waitFor(`timers back to ${baseline} (now ${liveTimers()})`, () => liveTimers() <= baseline, { timeoutMs: 2000 });
    }

    it('answers first to the first claim and running to the next, with a fresh token each time a key is taken', async () => {
      const claim = await store.claim('k', LONG_MS);
      expect(claim.kind).toBe('first');
      expect(claim.kind === 'first' && claim.token.length > 0).toBe(true);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'running' });

      const other = await first('other');
      expect(other).not.toBe(claim.kind === 'first' && claim.token);
    });

    it('answers done with the exact result once completed, on every node, until the window ends', async () => {
      const result = JSON.stringify({ sessions: [{ id: 's1', outcome: 'DELIVERED' }], note: 'é 🚀 \u0000 \n' });
      const token = await first('k');
      await store.complete('k', token, result, LONG_MS);

      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'done', result });
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'done', result });
      expect(await (await node()).claim('k', LONG_MS)).toEqual({ kind: 'done', result });
    });

    it('keeps results exactly as given: empty, control characters, lone surrogates, marker-like text, 100 KB', async () => {
      const results = ['', '\u0000', '\r\n', 'done:x', 'running:x', '😀', 'a\uD800b', '\uDFFF', '\uFFFD', 'x'.repeat(100_000)];
      for (const [i, result] of results.entries()) {
        await store.complete(`r${i}`, await first(`r${i}`), result, LONG_MS);
      }
      for (const [i, result] of results.entries()) {
        expect(await store.claim(`r${i}`, LONG_MS)).toEqual({ kind: 'done', result });
      }
    });

    it('gives first to exactly one of 20 claims made at once', async () => {
      const claims = await Promise.all(Array.from({ length: 20 }, () => store.claim('k', LONG_MS)));
      expect(claims.filter((c) => c.kind === 'first')).toHaveLength(1);
      expect(claims.filter((c) => c.kind === 'running')).toHaveLength(19);
    });

    it('gives first to exactly one claim when two nodes claim at once', async () => {
      const other = await node();
      for (let round = 0; round < 5; round++) {
        const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? other : store).claim(`k${round}`, LONG_MS)));
        expect(claims.filter((c) => c.kind === 'first')).toHaveLength(1);
      }
    });

    it('resolves every waitFor with the result once the key completes, on any node', async () => {
      const token = await first('k');
      const since = performance.now();
      const waits = [store.waitFor('k', new WatchedCancel()), store.waitFor('k', new WatchedCancel())];
      waits.push((await node()).waitFor('k', new WatchedCancel()));
      await new Promise((resolve) => setTimeout(resolve, 30));
      await store.complete('k', token, 'the result', LONG_MS);

      const ends = await Promise.all(waits.map((w) => outcome(w, since)));
      expect(ends.map((end) => end.value)).toEqual(['the result', 'the result', 'the result']);
    });

    it('resolves waitFor with undefined once the key is released, and the next claim is first', async () => {
      const token = await first('k');
      const wait = store.waitFor('k', new WatchedCancel());
      await store.release('k', token);

      expect(await wait).toBeUndefined();
      expect((await store.claim('k', LONG_MS)).kind).toBe('first');
    });

    it('resolves waitFor with undefined once the lease lapses, not before, and the next claim is first', async () => {
      const since = performance.now();
      await first('k', SHORT_MS);
      const wait = await outcome(store.waitFor('k', new WatchedCancel()), since);

      expect(wait.error).toBeUndefined();
      expect(wait.value).toBeUndefined();
      // Redis expires keys on its own millisecond clock: allow it a few ms of rounding.
      expect(wait.atMs).toBeGreaterThanOrEqual(SHORT_MS - 5);
      expect(wait.atMs).toBeLessThan(SHORT_MS + SLACK_MS);
      expect((await store.claim('k', LONG_MS)).kind).toBe('first');
    });

    it('answers waitFor at once for a key nobody holds (undefined) and for a completed one (its result)', async () => {
      expect(await store.waitFor('nobody', new WatchedCancel())).toBeUndefined();
      await store.complete('k', await first('k'), 'r', LONG_MS);
      expect(await store.waitFor('k', new WatchedCancel())).toBe('r');
    });

    it('ignores complete and release with a token that does not hold the key', async () => {
      const token = await first('k');
      await store.complete('k', 'not-the-token', 'forged', LONG_MS);
      await store.release('k', 'not-the-token');
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'running' });

      await store.complete('k', token, 'real', LONG_MS);
      await store.release('k', token);
      await store.complete('k', token, 'again', LONG_MS);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'done', result: 'real' });
    });

    it('changes nothing on a late complete or release after the lease lapsed and another claim took the key', async () => {
      const stale = await first('k', SHORT_MS);
      expect(await store.waitFor('k', new WatchedCancel())).toBeUndefined();
      const fresh = await first('k', LONG_MS, await node());

      await store.complete('k', stale, 'stale', LONG_MS);
      await store.release('k', stale);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'running' });

      await store.complete('k', fresh, 'fresh', LONG_MS);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'done', result: 'fresh' });
    });

    it('changes nothing on a complete after the lease lapsed, even when nobody claimed the key since', async () => {
      const stale = await first('k', SHORT_MS);
      expect(await store.waitFor('k', new WatchedCancel())).toBeUndefined();
      await store.complete('k', stale, 'late', LONG_MS);
      expect((await store.claim('k', LONG_MS)).kind).toBe('first');
    });

    it('forgets a result when its window ends: the key is first again', async () => {
      const since = performance.now();
      await store.complete('k', await first('k'), 'r', 300);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'done', result: 'r' });

      await waitFor('the result to be forgotten', async () => (await store.claim('k', LONG_MS)).kind === 'first', {
        timeoutMs: 300 + SLACK_MS,
      });
      expect(performance.now() - since).toBeGreaterThanOrEqual(300 - 5);
    });

    it('rejects waitFor with the signal’s reason as soon as it aborts, leaving no listener or timer behind', async () => {
      await first('k');
      const baseline = liveTimers();
      const signal = new WatchedCancel();
      const reason = new Error('deadline');
      const wait = store.waitFor('k', signal);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(signal.listeners.size).toBe(1);

      const since = performance.now();
      signal.abort(reason);
      const end = await outcome(wait, since);

      expect(end.error).toBe(reason);
      expect(end.atMs).toBeLessThan(50);
      expect(signal.listeners.size).toBe(0);
      await noTimerBeyond(baseline);
    });

    it('rejects waitFor on an AbortController’s signal with its reason, already aborted or aborting later', async () => {
      await first('k');
      const before = new AbortController();
      before.abort(new Error('already'));
      await expect(store.waitFor('k', before.signal)).rejects.toThrow('already');

      const later = new AbortController();
      const wait = store.waitFor('k', later.signal);
      setTimeout(() => later.abort(), 20);
      await expect(wait).rejects.toMatchObject({ name: 'AbortError' });
    });

    it('leaves no listener or timer behind once a wait resolves', async () => {
      const token = await first('k', SHORT_MS);
      const baseline = liveTimers();
      const completed = new WatchedCancel();
      const wait = store.waitFor('k', completed);
      await new Promise((resolve) => setTimeout(resolve, 30));
      await store.complete('k', token, 'r', LONG_MS);
      expect(await wait).toBe('r');
      expect(completed.listeners.size).toBe(0);

      await first('lapsing', SHORT_MS);
      const lapsed = new WatchedCancel();
      expect(await store.waitFor('lapsing', lapsed)).toBeUndefined();
      expect(lapsed.listeners.size).toBe(0);
      await noTimerBeyond(baseline);
    });

    it('keeps keys apart whatever characters they hold', async () => {
      const keys = [
        'a',
        'a\n',
        'a\r\n',
        'a\u0000',
        'a\u0000b',
        'a{b}',
        '{a}',
        '{a}b',
        'a😀',
        'a\uD83D',
        'a\uDE00',
        'a\uFFFD',
        '',
        ' ',
        'a:b',
      ];
      keys.push('idem:a', 'idem~"a"', 'é', 'e\u0301', 'x'.repeat(2000));
      const tokens = await Promise.all(keys.map((key) => store.claim(key, LONG_MS)));
      expect(tokens.map((c) => c.kind)).toEqual(keys.map(() => 'first'));

      await Promise.all(
        keys.map((key, i) => store.complete(key, (tokens[i] as IdempotencyClaim & { token: string }).token, `result ${i}`, LONG_MS)),
      );
      const claims = await Promise.all(keys.map((key) => store.claim(key, LONG_MS)));
      expect(claims).toEqual(keys.map((_, i) => ({ kind: 'done', result: `result ${i}` })));
    });

    it('refuses a lease or window that is not a whole, positive number of ms with a RangeError', async () => {
      await expect(store.claim('k', 0)).rejects.toBeInstanceOf(RangeError);
      await expect(store.claim('k', 1.5)).rejects.toBeInstanceOf(RangeError);
      await expect(store.claim('k', Number.NaN)).rejects.toThrow(/leaseMs/);
      const token = await first('k');
      await expect(store.complete('k', token, 'r', -1)).rejects.toThrow(/windowMs/);
      expect(await store.claim('k', LONG_MS)).toEqual({ kind: 'running' });
    });
  });
}

/** A Cancellation that shows which listeners are attached (an AbortSignal does not). */
export class WatchedCancel implements Cancellation {
  aborted = false;
  reason: unknown = undefined;
  readonly listeners = new Set<() => void>();

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.add(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.listeners.delete(listener);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = [...this.listeners];
    this.listeners.clear();
    for (const listener of listeners) listener();
  }
}
