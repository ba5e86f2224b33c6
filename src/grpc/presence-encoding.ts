import type { PresenceEvent as DomainPresenceEvent, PresenceKind } from '../domain/presence.js';
import { type PresenceEvent, PresenceEventKind } from '../gen/pushgate/v1/presence.js';
import { WatchPresenceResponse } from '../gen/pushgate/v1/push_service.js';
import { encodeSession } from './encode.js';

/**
 * Presence events on the wire, encoded once however many streams carry them. The registry hands
 * every subscriber the same event object, so the message built for it and its bytes are kept
 * with it (weakly: they go when the registry lets go of the event) and each further stream
 * writes the same bytes. Encoding per stream was most of a node's CPU under presence churn.
 */

const PRESENCE_KIND = {
  session_connected: PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_CONNECTED,
  session_disconnected: PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED,
  user_online: PresenceEventKind.PRESENCE_EVENT_KIND_USER_ONLINE,
  user_offline: PresenceEventKind.PRESENCE_EVENT_KIND_USER_OFFLINE,
  snapshot_complete: PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE,
} as const satisfies Record<PresenceKind, PresenceEventKind>;

export function encodePresenceEvent(event: DomainPresenceEvent): PresenceEvent {
  return {
    kind: PRESENCE_KIND[event.kind],
    userId: event.userId,
    session: event.session === undefined ? undefined : encodeSession(event.session),
    reason: event.reason,
    at: new Date(event.atMs),
    sessionCount: event.sessionCount,
    cursor: event.cursor,
  };
}

const responses = new WeakMap<DomainPresenceEvent, WatchPresenceResponse>();
/** Bytes of the messages presenceResponse made; null until the first stream writes one. */
const encoded = new WeakMap<WatchPresenceResponse, Buffer | null>();

/** The WatchPresence message of `event`: the same object for every stream that writes it, so its bytes are made once. */
export function presenceResponse(event: DomainPresenceEvent): WatchPresenceResponse {
  let response = responses.get(event);
  if (response === undefined) {
    response = { event: encodePresenceEvent(event), events: [] };
    responses.set(event, response);
    encoded.set(response, null);
  }
  return response;
}

/** Field 1 (`event`) and field 2 (`events`) of WatchPresenceResponse, as length-delimited tags. */
const EVENT_TAG = 0x0a;
const EVENTS_TAG = 0x12;

/**
 * One WatchPresence message holding several events (max_events_per_message). Its bytes are made
 * here, from each event's own message bytes (cached for every stream): `{event: e}` is the tag of
 * field 1, a length and e; the same bytes with the tag of field 2 are one element of `events`, so
 * the batch is their concatenation with each first byte changed.
 */
export function presenceBatch(events: readonly DomainPresenceEvent[]): WatchPresenceResponse {
  const singles = events.map((event) => serializeWatchPresenceResponse(presenceResponse(event)));
  const bytes = Buffer.allocUnsafe(singles.reduce((total, single) => total + single.length, 0));
  let at = 0;
  for (const single of singles) {
    if (single[0] !== EVENT_TAG) throw new Error('a presence message does not start with its event field');
    single.copy(bytes, at);
    bytes[at] = EVENTS_TAG;
    at += single.length;
  }
  const response: WatchPresenceResponse = { event: undefined, events: events.map((event) => presenceResponse(event).event!) };
  encoded.set(response, bytes);
  return response;
}

/**
 * WatchPresence's response serializer: the bytes already made for a message from presenceResponse or presenceBatch,
 * else (the first stream to write it, or any other message) ts-proto's encoding. grpc-js copies
 * them into its own frame, so one buffer can serve every stream.
 */
export function serializeWatchPresenceResponse(response: WatchPresenceResponse): Buffer {
  const cached = encoded.get(response);
  if (cached) return cached;
  const array = WatchPresenceResponse.encode(response).finish();
  const bytes = Buffer.from(array.buffer, array.byteOffset, array.byteLength);
  if (cached === null) encoded.set(response, bytes);
  return bytes;
}
