import { once } from 'node:events';
import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { BatchItem } from '../domain/push.js';
import type { PushService } from '../domain/push-service.js';
import type { PushToUsersRequest, PushToUsersResponse } from '../gen/pushgate/v1/push_service.js';
import { abortSignalOf, callerOf, requestIdOf, usersOf } from './call-context.js';
import { BatchItemMessage, type BatchMessageContent } from './encode.js';
import { dataFactsOf, requireDecoded } from './payload-size.js';
import { toGrpcError } from './status.js';
import type { InFlight } from './unary.js';
import { type BatchLimits, perMessageOf, toBatchPushRequest } from './validate.js';

const METHOD = 'PushToUsers';

type Call = ServerWritableStream<PushToUsersRequest, PushToUsersResponse>;

export interface PushToUsersDeps {
  readonly limits: BatchLimits;
  readonly inFlight: InFlight;
  readonly log: Logger;
  /** PUSHGATE_GRPC_MAX_CALL_MS: a batch is finite work, so it gets the unary calls' cap. */
  readonly maxCallMs: number;
}

/**
 * PushToUsers: validate, run the batch on the push service, write each user's result as it comes
 * (waiting for `drain` when the call's buffer is full), then the summary, then OK. Cancellation,
 * the deadline and a connection that is gone abort the batch (every ack wait ends at once). The
 * call is counted in flight until the batch has settled, so a drain waits for it.
 */
export function pushToUsers(push: PushService, deps: PushToUsersDeps): handleServerStreamingCall<PushToUsersRequest, PushToUsersResponse> {
  const { limits, inFlight, log, maxCallMs } = deps;
  return (call) => {
    const { signal, release } = abortSignalOf(call, { alsoOn: ['close', 'error'], maxMs: maxCallMs });
    const fail = (err: unknown): void => {
      if (signal.aborted && call.cancelled) return;
      call.emit('error', toGrpcError(err, log, requestIdOf(call), METHOD, callerOf(call), usersOf(call.request)));
    };
    inFlight.begin();
    let items: AsyncGenerator<BatchItem, void, undefined>;
    let perMessage: number;
    try {
      const request = requireDecoded(call.request);
      perMessage = perMessageOf(request.maxResultsPerMessage, 'max_results_per_message');
      items = push.pushMany(toBatchPushRequest(request, dataFactsOf(request), limits), signal);
    } catch (err) {
      release();
      inFlight.end();
      fail(err);
      return;
    }
    pump(call, items, signal, perMessage)
      .then(
        () => (signal.aborted ? fail(signal.reason) : call.end()),
        (err: unknown) => fail(err),
      )
      .catch((err: unknown) => log.error({ err, method: METHOD }, 'ending a PushToUsers stream failed'))
      .finally(() => {
        release();
        inFlight.end();
      });
  };
}

/**
 * Writes each user's result as its own message, or (`perMessage` above 1) the results complete
 * together up to that many a message, then the summary. Leaving the loop early (the call is gone)
 * ends the batch: `for await` calls the generator's return().
 */
async function pump(call: Call, items: AsyncGenerator<BatchItem, void, undefined>, signal: AbortSignal, perMessage: number): Promise<void> {
  for await (const item of items) {
    const messages: BatchMessageContent[] =
      item.kind === 'summary'
        ? [item]
        : perMessage <= 1
          ? item.results.map((result) => ({ kind: 'user', result }))
          : chunks(item.results, perMessage).map((results) => ({ kind: 'users', results }));
    for (const message of messages) {
      if (signal.aborted) return;
      if (!call.write(new BatchItemMessage(message))) {
        // Wakes when the reader drained the buffer, or when the call ends (cancel, deadline).
        await once(call, 'drain', { signal }).catch(() => undefined);
      }
    }
  }
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
