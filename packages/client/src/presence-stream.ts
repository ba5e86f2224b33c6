import { type Metadata, status } from '@grpc/grpc-js';
import { CursorExpiredError, isCursorExpired, isPushgateError, isServiceError, type PushgateClientError, toClientError } from './errors.js';
import { type PresenceEvent, PresenceEventKind } from './gen/pushgate/v1/presence.js';
import { type PushServiceClient, WatchPresenceRequest, type WatchPresenceResponse } from './gen/pushgate/v1/push_service.js';
import type { RetryEvent } from './options.js';
import { ResumableStream } from './resumable-stream.js';
import { backoffMs, type RetryPolicy, sleep } from './retry.js';

const METHOD = 'WatchPresence';
/** max_events_per_message asked for: a server sends up to this many waiting events together (older servers one). */
const EVENTS_PER_MESSAGE = 100;

export interface WatchPresenceOptions {
  /** Only these users; every user when empty. */
  readonly userIds?: readonly string[];
  /** Start with one SESSION_CONNECTED per live session, then SNAPSHOT_COMPLETE, then live events. */
  readonly includeSnapshot?: boolean;
  /** Start after this cursor (a PresenceEvent.cursor saved earlier, e.g. `stream.cursor`). */
  readonly resumeAfter?: string;
  /**
   * When the server no longer holds the events after the stream's cursor (FAILED_PRECONDITION,
   * `cursor_expired`): `'throw'` (default) ends the iteration with a CursorExpiredError, so the
   * caller knows events were lost; `'snapshot'` starts over with a snapshot (SESSION_CONNECTED
   * events with reason "snapshot", then SNAPSHOT_COMPLETE) and carries on.
   */
  readonly onCursorExpired?: 'throw' | 'snapshot';
  /**
   * Consecutive failed attempts (UNAVAILABLE, or a stream ended with nothing delivered) before the
   * iteration gives up with the last error. Default 20: about a minute of outage with the default
   * backoff. An attempt that delivered an event, or stayed open longer than the longest backoff,
   * resets the count.
   */
  readonly maxReconnectAttempts?: number;
}

export interface PresenceStreamDeps {
  readonly raw: PushServiceClient;
  readonly request: WatchPresenceOptions;
  readonly metadata: () => Metadata;
  readonly retry: RetryPolicy;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
  readonly signal: AbortSignal | undefined;
}

const DEFAULT_MAX_RECONNECT_ATTEMPTS = 20;

type Start = { kind: 'live' } | { kind: 'snapshot' } | { kind: 'resume'; cursor: string };

/**
 * A presence stream that reconnects by itself: an async iterator of PresenceEvent, paced by its
 * reader (grpc-js flow control holds the server back while the reader is busy). Where each
 * reconnect starts:
 * - after the first event of a live stream, or after SNAPSHOT_COMPLETE: resume_after the last
 *   cursor delivered, so nothing is lost or repeated;
 * - during a snapshot: the snapshot again (its events may repeat);
 * - a live stream that has delivered nothing yet has no cursor: live again (changes in the gap
 *   are not seen; open with includeSnapshot or resumeAfter when that matters).
 * Ends with the signal's reason when aborted, quietly on `close()` or `break`, and with a
 * PushgateClientError for anything not worth retrying (a refused key, a bad request, …).
 */
export class PresenceStream extends ResumableStream<PresenceEvent> {
  constructor(private readonly deps: PresenceStreamDeps) {
    super(deps.request.resumeAfter, deps.request.maxReconnectAttempts);
    if (deps.request.includeSnapshot && deps.request.resumeAfter) {
      throw new TypeError(
        'includeSnapshot and resumeAfter cannot be combined: resumeAfter continues a stream, includeSnapshot starts over',
      );
    }
  }

  protected async *run(): AsyncGenerator<PresenceEvent, void, undefined> {
    const { request, retry, signal } = this.deps;
    const maxAttempts = request.maxReconnectAttempts ?? DEFAULT_MAX_RECONNECT_ATTEMPTS;
    const stop = signal === undefined ? this.closer.signal : AbortSignal.any([signal, this.closer.signal]);
    let start: Start = request.resumeAfter
      ? { kind: 'resume', cursor: request.resumeAfter }
      : request.includeSnapshot
        ? { kind: 'snapshot' }
        : { kind: 'live' };
    let failures = 0;
    for (;;) {
      if (this.closer.signal.aborted) return;
      signal?.throwIfAborted();
      const call = this.deps.raw.watchPresence(
        WatchPresenceRequest.fromPartial({
          userIds: [...(request.userIds ?? [])],
          includeSnapshot: start.kind === 'snapshot',
          resumeAfter: start.kind === 'resume' ? start.cursor : '',
          // What is already waiting comes in one message (a node pays per message, not per event).
          maxEventsPerMessage: EVENTS_PER_MESSAGE,
        }),
        this.deps.metadata(),
      );
      // The status also arrives as 'error' after the iterator has let go of the stream.
      call.on('error', () => {});
      const cancel = (): void => call.cancel();
      stop.addEventListener('abort', cancel, { once: true });
      const openedAt = Date.now();
      let delivered = false;
      let failure: unknown;
      try {
        for await (const response of call as AsyncIterable<WatchPresenceResponse>) {
          for (const event of response.event === undefined ? response.events : [response.event]) {
            delivered = true;
            if (event.cursor !== '') this.lastCursor = event.cursor;
            if (start.kind !== 'snapshot' || event.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE) {
              if (this.lastCursor !== '') start = { kind: 'resume', cursor: this.lastCursor };
            }
            yield event;
          }
        }
      } catch (err) {
        failure = err;
      } finally {
        stop.removeEventListener('abort', cancel);
        call.cancel();
      }
      if (this.closer.signal.aborted) return;
      if (signal?.aborted) throw signal.reason;

      const error = failure === undefined ? undefined : isServiceError(failure) ? toClientError(METHOD, failure) : failure;
      if (error !== undefined && !isPushgateError(error)) throw error;
      if (error !== undefined && isCursorExpired(error)) {
        if (request.onCursorExpired !== 'snapshot') throw new CursorExpiredError(error, start.kind === 'resume' ? start.cursor : '');
        start = { kind: 'snapshot' };
        this.deps.onRetry?.({ method: METHOD, error, attempt: 1, delayMs: 0 });
        continue;
      }
      if (error !== undefined && !resumable(error, start)) throw error;

      const healthy = delivered || Date.now() - openedAt > retry.maxBackoffMs;
      failures = healthy ? 1 : failures + 1;
      const streamEnded = error ?? new Error('the presence stream ended (the node is draining or shutting down)');
      if (failures > maxAttempts) throw streamEnded;
      const delayMs = backoffMs(retry, failures);
      this.deps.onRetry?.({ method: METHOD, error: streamEnded, attempt: failures, delayMs });
      await sleep(delayMs, stop).catch((err: unknown) => {
        if (!this.closer.signal.aborted) throw err;
      });
      if (this.closer.signal.aborted) return;
    }
  }
}

/** UNAVAILABLE (node gone, draining, Redis away) always; an overflow when there is a cursor to resume from. */
function resumable(error: PushgateClientError, start: Start): boolean {
  if (error.code === status.UNAVAILABLE) return true;
  return error.code === status.RESOURCE_EXHAUSTED && error.pushgateCode === 'presence_overflow' && start.kind !== 'live';
}
