import { describe, expect, it } from 'vitest';
import type { PresenceEvent } from '../../src/domain/presence.js';
import { PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import { WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { encodePresenceEvent, presenceBatch, presenceResponse, serializeWatchPresenceResponse } from '../../src/grpc/presence-encoding.js';
import { sessionRecord } from '../support/session-record.js';

function event(sessionId: string, overrides: Partial<PresenceEvent> = {}): PresenceEvent {
  const session = sessionRecord('u1', sessionId, { connectedAtMs: 1_700_000_000_123, lastSeenAtMs: 1_700_000_000_456 });
  return {
    kind: 'session_connected',
    userId: 'u1',
    session,
    reason: '',
    atMs: 1_700_000_000_789,
    sessionCount: 2,
    cursor: 'c-7',
    ...overrides,
  };
}

describe('presence encoding', () => {
  it('encodes an event once, however many streams write it: every stream gets the same bytes', () => {
    const e = event('s1');
    const first = serializeWatchPresenceResponse(presenceResponse(e));
    const again = serializeWatchPresenceResponse(presenceResponse(e));
    expect(presenceResponse(e)).toBe(presenceResponse(e));
    expect(again).toBe(first);
    expect(WatchPresenceResponse.decode(first)).toEqual({ event: encodePresenceEvent(e), events: [] });
  });

  it('gives each event its own bytes, even one equal in every field', () => {
    const [a, b] = [event('s1'), event('s2')];
    const twin = event('s1');
    const bytesA = serializeWatchPresenceResponse(presenceResponse(a));
    expect(WatchPresenceResponse.decode(serializeWatchPresenceResponse(presenceResponse(b))).event?.session?.sessionId).toBe('s2');
    expect(serializeWatchPresenceResponse(presenceResponse(twin))).not.toBe(bytesA);
    expect(serializeWatchPresenceResponse(presenceResponse(twin))).toEqual(bytesA);
  });

  it('encodes any other response afresh on every write, so one changed between writes is sent as it is then', () => {
    const response: WatchPresenceResponse = { event: encodePresenceEvent(event('s1')), events: [] };
    const before = serializeWatchPresenceResponse(response);
    response.event!.sessionCount = 5;
    expect(WatchPresenceResponse.decode(serializeWatchPresenceResponse(response)).event?.sessionCount).toBe(5);
    expect(WatchPresenceResponse.decode(before).event?.sessionCount).toBe(2);
  });

  it('encodes a batch as ts-proto encodes the same events in `events`, in order, from each event’s cached bytes', () => {
    const events = [
      event('s1'),
      event('s2', { kind: 'session_disconnected', reason: 'kicked', sessionCount: 1 }),
      event('s3', { cursor: `c-${'x'.repeat(300)}` }),
    ];
    const singles = events.map((e) => serializeWatchPresenceResponse(presenceResponse(e)));
    const batch = presenceBatch(events);
    const bytes = serializeWatchPresenceResponse(batch);

    const expected = { event: undefined, events: events.map(encodePresenceEvent) };
    expect(Buffer.from(WatchPresenceResponse.encode(expected).finish())).toEqual(bytes);
    expect(WatchPresenceResponse.decode(bytes)).toEqual({ event: undefined, events: events.map(encodePresenceEvent) });
    // The events' own messages are untouched, and still served to streams that take one per message.
    expect(singles.map((single) => single[0])).toEqual([0x0a, 0x0a, 0x0a]);
    expect(serializeWatchPresenceResponse(presenceResponse(events[0]!))).toBe(singles[0]);
  });

  it('maps kinds and times as the wire defines them', () => {
    const wire = encodePresenceEvent(event('s1', { kind: 'user_offline', reason: 'kicked', sessionCount: 0 }));
    expect(wire.kind).toBe(PresenceEventKind.PRESENCE_EVENT_KIND_USER_OFFLINE);
    expect(wire.at?.getTime()).toBe(1_700_000_000_789);
    expect(wire.session?.connectedAt?.getTime()).toBe(1_700_000_000_123);
    expect(encodePresenceEvent(event('', { kind: 'snapshot_complete', session: undefined })).session).toBeUndefined();
  });
});
