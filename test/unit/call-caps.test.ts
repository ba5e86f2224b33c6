import { afterEach, describe, expect, it, vi } from 'vitest';
import { Cancel } from '../../src/domain/cancellation.js';
import { CallCaps } from '../../src/grpc/call-caps.js';

afterEach(() => vi.useRealTimers());

describe('CallCaps', () => {
  it('aborts each capped call maxMs after it started, in start order, with deadline_exceeded', () => {
    vi.useFakeTimers();
    const caps = new CallCaps(1000, () => Date.now());
    const first = new Cancel();
    const second = new Cancel();
    caps.add(Infinity, first);
    vi.advanceTimersByTime(400);
    caps.add(Infinity, second);

    vi.advanceTimersByTime(599);
    expect(first.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(first.aborted).toBe(true);
    expect(first.reason).toMatchObject({ code: 'deadline_exceeded' });
    expect(String((first.reason as Error).message)).toContain('PUSHGATE_GRPC_MAX_CALL_MS');
    expect(second.aborted).toBe(false);

    vi.advanceTimersByTime(400);
    expect(second.aborted).toBe(true);
    expect(caps.size).toBe(0);
  });

  it('leaves a released call alone, and a call whose own deadline comes first uncapped', () => {
    vi.useFakeTimers();
    const caps = new CallCaps(1000, () => Date.now());
    const released = new Cancel();
    const soon = new Cancel();
    const later = new Cancel();
    caps.release(caps.add(Infinity, released));
    expect(caps.add(800, soon)).toBeUndefined();
    vi.advanceTimersByTime(500);
    caps.add(5000, later);

    vi.advanceTimersByTime(1000);
    expect(released.aborted).toBe(false);
    expect(soon.aborted).toBe(false);
    expect(later.aborted).toBe(true);
  });

  it('keeps at most one timer whatever the number of calls, and none once they ended', () => {
    vi.useFakeTimers();
    const caps = new CallCaps(1000, () => Date.now());
    const entries = Array.from({ length: 100 }, () => caps.add(Infinity, new Cancel()));
    expect(vi.getTimerCount()).toBe(1);
    for (const entry of entries) caps.release(entry);
    vi.advanceTimersByTime(1000);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('Cancel', () => {
  it('tells each listener once, in order, with the reason set; listeners removed or added late are not called', () => {
    const cancel = new Cancel();
    const calls: string[] = [];
    const removed = (): void => {
      calls.push('removed');
    };
    cancel.addEventListener('abort', () => calls.push(`a:${String(cancel.reason)}`));
    cancel.addEventListener('abort', removed);
    cancel.addEventListener('abort', () => calls.push('b'));
    cancel.removeEventListener('abort', removed);

    cancel.abort('why');
    cancel.abort('again');
    cancel.addEventListener('abort', () => calls.push('late'));

    expect(calls).toEqual(['a:why', 'b']);
    expect(cancel.aborted).toBe(true);
    expect(cancel.reason).toBe('why');
  });
});
