import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PresenceEvent } from '../../src/domain/presence.js';
import type { SessionRecord } from '../../src/domain/session.js';
import { MemorySessionRegistry } from '../../src/registry/memory-registry.js';
import { refusal } from '../support/refusal.js';
import { sessionRecord } from '../support/session-record.js';

/**
 * What the memory registry adds to the contract suite (test/contract): its cursor format, age-based
 * retention without a timer, and a fresh feed per instance, as a restarted node has.
 */

function session(userId: string, sessionId: string): SessionRecord {
  return sessionRecord(userId, sessionId);
}

describe('MemorySessionRegistry presence feed', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('numbers positions <epoch>-<seq>, from <epoch>-0 before any event', async () => {
    const registry = new MemorySessionRegistry();
    const start = await registry.position();
    expect(start).toMatch(/^[0-9a-f]{16}-0$/);
    const epoch = start.slice(0, -2);

    await registry.register(session('u1', 's-1'));
    expect((await registry.readAfter(start, 10)).map((event) => event.cursor)).toEqual([`${epoch}-1`, `${epoch}-2`]);
    expect(await registry.position()).toBe(`${epoch}-2`);
  });

  it('keeps the newest `retention` events and names the position before them as the oldest cursor', async () => {
    const registry = new MemorySessionRegistry({ retention: 3, retentionMs: 600_000 });
    const start = await registry.position();
    for (let i = 0; i < 6; i++) await registry.register(session('u1', `s-${i}`)); // events 1..7

    const err = await refusal(registry.readAfter(start, 10));
    expect(err.code).toBe('cursor_expired');
    expect(err.details.oldest_cursor).toBe(start.replace(/-0$/, '-4'));
    expect((await registry.readAfter(err.details.oldest_cursor!, 10)).map((event) => event.session?.sessionId)).toEqual([
      's-3',
      's-4',
      's-5',
    ]);
  });

  it('drops events older than retentionMs when the feed is read, with no write and no timer', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.UTC(2024, 0, 1) });
    const registry = new MemorySessionRegistry({ retention: 100, retentionMs: 60_000 });
    const start = await registry.position();
    await registry.register(session('early', 's-early'));
    vi.advanceTimersByTime(30_000);
    await registry.register(session('late', 's-late'));
    vi.advanceTimersByTime(30_001);

    // The early events are 60.001 s old: gone, though nothing was written since.
    const err = await refusal(registry.readAfter(start, 10));
    expect(err.code).toBe('cursor_expired');
    expect((await registry.readAfter(err.details.oldest_cursor!, 10)).map((event) => event.userId)).toEqual(['late', 'late']);

    vi.advanceTimersByTime(30_000);
    const later = await refusal(registry.readAfter(start, 10));
    expect(later.details.oldest_cursor).toBe(await registry.position());
    expect(await registry.readAfter(later.details.oldest_cursor!, 10)).toEqual([]);
  });

  it('reads back each event as it was told live, field for field, also across a full ring', async () => {
    const registry = new MemorySessionRegistry({ retention: 4, retentionMs: 600_000 });
    const live: PresenceEvent[] = [];
    registry.subscribe((event) => live.push(event));
    const start = await registry.position();
    await registry.register(session('u1', 's-1'));
    await registry.register(session('u1', 's-2'));
    expect(await registry.readAfter(start, 10)).toEqual(live);

    await registry.unregister('u1', 's-1', 'kicked');
    await registry.unregister('u1', 's-2', 'token_expired');
    await registry.register(session('u2', 's-3'));
    // Six events in a ring of four: the newest four come back, in order and whole.
    const oldest = (await refusal(registry.readAfter(start, 10))).details.oldest_cursor!;
    expect(await registry.readAfter(oldest, 10)).toEqual(live.slice(-4));
    expect(live.slice(-4).map((event) => [event.kind, event.reason, event.sessionCount])).toEqual([
      ['session_disconnected', 'token_expired', 0],
      ['user_offline', 'token_expired', 0],
      ['user_online', '', 1],
      ['session_connected', '', 1],
    ]);
  });

  it('refuses a cursor from another instance, as after a restart, naming its own start', async () => {
    const before = new MemorySessionRegistry();
    await before.register(session('u1', 's-1'));
    const old = await before.position();
    const restarted = new MemorySessionRegistry();
    const start = await restarted.position();
    await restarted.register(session('u2', 's-2'));

    const err = await refusal(restarted.readAfter(old, 10));
    expect(err.code).toBe('cursor_expired');
    expect(err.details.oldest_cursor).toBe(start);
    expect(err.message).toContain(start);
  });

  it('refuses a cursor ahead of the newest event with invalid_argument', async () => {
    const registry = new MemorySessionRegistry();
    await registry.register(session('u1', 's-1'));
    const newest = await registry.position();
    expect(await registry.readAfter(newest, 10)).toEqual([]);

    const ahead = newest.replace(/-2$/, '-3');
    const err = await refusal(registry.readAfter(ahead, 10));
    expect(err.code).toBe('invalid_argument');
    expect(err.message).toContain(ahead);
  });
});
