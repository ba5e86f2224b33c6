import fc from 'fast-check';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { type Expiring, ExpiryClock } from '../../src/edge/expiry-clock.js';

/** ExpiryClock under fake timers (Date.now moves with them): one timer, items expired at their time. */

interface Item extends Expiring {
  readonly name: string;
}

const item = (name: string): Item => ({ name, expiryIndex: -1 });
const T0 = Date.UTC(2026, 0, 1);

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});

afterEach(() => {
  vi.useRealTimers();
});

it('expires each item at its time, in order, with one timer for all of them', () => {
  const expired: string[] = [];
  const clock = new ExpiryClock<Item>((i) => expired.push(i.name));
  const [a, b, c] = [item('a'), item('b'), item('c')];
  clock.watch(c, T0 + 3000);
  clock.watch(a, T0 + 1000);
  clock.watch(b, T0 + 2000);
  expect(vi.getTimerCount()).toBe(1);
  vi.advanceTimersByTime(999);
  expect(expired).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(expired).toEqual(['a']);
  expect(clock.has(a)).toBe(false);
  vi.advanceTimersByTime(2000);
  expect(expired).toEqual(['a', 'b', 'c']);
  expect(clock.size).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
});

it('moves an expiry later or earlier when an item is watched again', () => {
  const expired: string[] = [];
  const clock = new ExpiryClock<Item>((i) => expired.push(i.name));
  const [a, b] = [item('a'), item('b')];
  clock.watch(a, T0 + 1000);
  clock.watch(b, T0 + 5000);
  clock.watch(a, T0 + 10_000);
  expect(clock.expiryOf(a)).toBe(T0 + 10_000);
  vi.advanceTimersByTime(1000);
  expect(expired).toEqual([]);
  clock.watch(b, T0 + 2000);
  vi.advanceTimersByTime(1000);
  expect(expired).toEqual(['b']);
  vi.advanceTimersByTime(8000);
  expect(expired).toEqual(['b', 'a']);
});

it('leaves nothing scheduled for an unwatched item, and no timer once empty', () => {
  const expired: string[] = [];
  const clock = new ExpiryClock<Item>((i) => expired.push(i.name));
  const [a, b] = [item('a'), item('b')];
  clock.watch(a, T0 + 1000);
  clock.watch(b, T0 + 2000);
  clock.unwatch(a);
  clock.unwatch(a);
  expect(clock.expiryOf(a)).toBeUndefined();
  vi.advanceTimersByTime(1500);
  expect(expired).toEqual([]);
  clock.unwatch(b);
  expect(clock.size).toBe(0);
  expect(vi.getTimerCount()).toBe(0);
  vi.advanceTimersByTime(10_000);
  expect(expired).toEqual([]);
});

it("reaches an expiry beyond setTimeout's longest wait", () => {
  const expired: string[] = [];
  const clock = new ExpiryClock<Item>((i) => expired.push(i.name));
  const days40 = 40 * 24 * 3600 * 1000;
  clock.watch(item('far'), T0 + days40);
  vi.advanceTimersByTime(days40 - 1);
  expect(expired).toEqual([]);
  vi.advanceTimersByTime(1);
  expect(expired).toEqual(['far']);
});

it('expires the other due items after one whose onExpired throws', () => {
  const expired: string[] = [];
  const clock = new ExpiryClock<Item>((i) => {
    expired.push(i.name);
    if (i.name === 'a') throw new Error('boom');
  });
  clock.watch(item('a'), T0 + 1000);
  clock.watch(item('b'), T0 + 1000);
  expect(() => vi.advanceTimersByTime(1000)).toThrow('boom');
  vi.advanceTimersByTime(1);
  expect(expired).toEqual(['a', 'b']);
  expect(clock.size).toBe(0);
});

it('agrees with a plain list under any sequence of watch, unwatch and time passing', () => {
  type Op = { kind: 'watch'; id: number; inMs: number } | { kind: 'unwatch'; id: number } | { kind: 'advance'; ms: number };
  const op = fc.oneof(
    fc.record({ kind: fc.constant('watch' as const), id: fc.integer({ min: 0, max: 7 }), inMs: fc.integer({ min: 0, max: 5000 }) }),
    fc.record({ kind: fc.constant('unwatch' as const), id: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 3000 }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops: Op[]) => {
      vi.setSystemTime(T0);
      const items = Array.from({ length: 8 }, (_, i) => item(String(i)));
      const expired: string[] = [];
      const clock = new ExpiryClock<Item>((i) => expired.push(i.name));
      const model = new Map<number, number>();
      const modelExpired: string[] = [];
      for (const o of ops) {
        if (o.kind === 'watch') {
          clock.watch(items[o.id]!, Date.now() + o.inMs);
          model.set(o.id, Date.now() + o.inMs);
        } else if (o.kind === 'unwatch') {
          clock.unwatch(items[o.id]!);
          model.delete(o.id);
        } else {
          const until = Date.now() + o.ms;
          vi.advanceTimersByTime(o.ms);
          // Due ones in order of expiry (ties in any order: compared as sets below).
          const due = [...model].filter(([, at]) => at <= until).sort((x, y) => x[1] - y[1]);
          for (const [id] of due) {
            model.delete(id);
            modelExpired.push(String(id));
          }
        }
        expect(clock.size).toBe(model.size);
        for (const [id, at] of model) expect(clock.expiryOf(items[id]!)).toBe(at);
      }
      expect([...expired].sort()).toEqual([...modelExpired].sort());
      clock.clear();
      expect(vi.getTimerCount()).toBe(0);
    }),
    { numRuns: 300 },
  );
});
