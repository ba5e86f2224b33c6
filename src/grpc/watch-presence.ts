import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { PresenceService, PresenceWatch, WatchRequest } from '../domain/presence-service.js';
import { PushgateError } from '../errors.js';
import type { WatchPresenceRequest, WatchPresenceResponse } from '../gen/pushgate/v1/push_service.js';
import { abortSignalOf, callerOf, drainOrEnd, requestIdOf } from './call-context.js';
import { requireDecoded } from './payload-size.js';
import { presenceBatch, presenceResponse } from './presence-encoding.js';
import { toGrpcError } from './status.js';
import { perMessageOf, requireId } from './validate.js';

const METHOD = 'WatchPresence';

/** Longer than any cursor a registry hands out (cluster cursors hold a position per shard); refused before it reaches the registry. */
const MAX_CURSOR_LENGTH = 65_536;

type Call = ServerWritableStream<WatchPresenceRequest, WatchPresenceResponse>;

export interface WatchLimits {
  /** PUSHGATE_MAX_WATCH_USER_IDS: `user_ids` one request may name. */
  readonly maxUserIds: number;
}

/**
 * WatchPresence: validate, open a watch on the presence service, write each event as the reader
 * takes it (the call's own buffer is the backpressure signal), and end with OK or with the status
 * the one error mapping gives — trailers included. Ordering and bounds live in the service.
 */
export function watchPresence(
  presence: PresenceService,
  limits: WatchLimits,
  log: Logger,
): handleServerStreamingCall<WatchPresenceRequest, WatchPresenceResponse> {
  return (call) => {
    // A stream whose connection is gone may close without a cancel: that ends the watch too.
    const { signal, release } = abortSignalOf(call, { alsoOn: ['close', 'error'] });
    const caller = callerOf(call);
    let watch: PresenceWatch;
    let perMessage: number;
    try {
      const request = requireDecoded(call.request);
      perMessage = perMessageOf(request.maxEventsPerMessage, 'max_events_per_message');
      watch = presence.watch(watchRequestOf(request, caller, limits), signal);
    } catch (err) {
      release();
      call.emit('error', toGrpcError(err, log, requestIdOf(call), METHOD, caller));
      return;
    }
    pump(call, watch, signal, perMessage)
      .then(
        () => {
          if (!signal.aborted) call.end();
        },
        (err: unknown) => {
          if (!signal.aborted) call.emit('error', toGrpcError(err, log, requestIdOf(call), METHOD, caller));
        },
      )
      .finally(release)
      .catch((err: unknown) => log.error({ err, method: METHOD }, 'ending a presence stream failed'));
  };
}

/**
 * Writes what is queued without waiting between events, and waits (next()) only when nothing is;
 * with `perMessage` above 1, what is queued goes out up to that many events a message. However
 * the loop is left, the watch ends (return() lets go of the subscription).
 */
async function pump(call: Call, watch: PresenceWatch, signal: AbortSignal, perMessage: number): Promise<void> {
  const drained = drainOrEnd(call, watch.stopped);
  try {
    for (;;) {
      let event = watch.poll();
      if (event === undefined) {
        const step = await watch.next();
        if (step.done) return;
        event = step.value;
      }
      if (signal.aborted) return;
      let response: WatchPresenceResponse;
      if (perMessage <= 1) response = presenceResponse(event);
      else {
        const batch = [event];
        while (batch.length < perMessage) {
          const next = watch.poll();
          if (next === undefined) break;
          batch.push(next);
        }
        response = presenceBatch(batch);
      }
      if (!call.write(response)) {
        await drained();
      }
    }
  } finally {
    await watch.return();
  }
}

function watchRequestOf(request: WatchPresenceRequest, caller: string, limits: WatchLimits): WatchRequest {
  if (request.userIds.length > limits.maxUserIds) {
    throw new PushgateError(
      'invalid_argument',
      `user_ids names ${request.userIds.length} users, more than the ${limits.maxUserIds} allowed (PUSHGATE_MAX_WATCH_USER_IDS); watch every user with an empty list, or split the users over several streams`,
    );
  }
  const userIds = request.userIds.map((id, i) => requireId(id, `user_ids[${i}]`));
  const resuming = request.resumeAfter !== '';
  if (request.includeSnapshot && resuming) {
    throw new PushgateError(
      'invalid_argument',
      'include_snapshot and resume_after cannot be combined: resume_after continues a stream from its last cursor, include_snapshot starts over',
    );
  }
  if (request.resumeAfter.length > MAX_CURSOR_LENGTH) {
    throw new PushgateError('invalid_argument', `resume_after must be at most ${MAX_CURSOR_LENGTH} characters`);
  }
  if (request.includeSnapshot) return { userIds, caller, from: { kind: 'snapshot' } };
  if (resuming) return { userIds, caller, from: { kind: 'resume', cursor: request.resumeAfter, name: 'resume_after' } };
  return { userIds, caller, from: { kind: 'live' } };
}
