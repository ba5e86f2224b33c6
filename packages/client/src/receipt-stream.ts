import { type Metadata, status } from '@grpc/grpc-js';
import { CursorExpiredError, isCursorExpired, isPushgateError, isServiceError, toClientError } from './errors.js';
import type { ReceiptEvent } from './gen/pushgate/v1/inbox.js';
import { type PushServiceClient, WatchReceiptsRequest, type WatchReceiptsResponse } from './gen/pushgate/v1/push_service.js';
import type { RetryEvent } from './options.js';
import { ResumableStream } from './resumable-stream.js';
import { backoffMs, type RetryPolicy, sleep } from './retry.js';

const METHOD = 'WatchReceipts';
const DEFAULT_MAX_RECONNECT_ATTEMPTS = 20;

export interface WatchReceiptsOptions {
  /** Only these users; every user when empty. */
  readonly userIds?: readonly string[];
  /** Start after this cursor (a ReceiptEvent.cursor saved earlier, e.g. `stream.cursor`). */
  readonly resumeAfter?: string;
  /**
   * Consecutive failed attempts (UNAVAILABLE, or a stream ended with nothing delivered) before the
   * iteration gives up with the last error. Default 20, as for presence streams.
   */
  readonly maxReconnectAttempts?: number;
}

export interface ReceiptStreamDeps {
  readonly raw: PushServiceClient;
  readonly request: WatchReceiptsOptions;
  readonly metadata: () => Metadata;
  readonly retry: RetryPolicy;
  readonly onRetry: ((event: RetryEvent) => void) | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * Receipt events (acked, stored, expired, dropped, deleted) as an async iterator that reconnects
 * by itself, the way PresenceStream does: after UNAVAILABLE, the end of the stream (a node
 * draining) or an overflow (`receipt_overflow`), it resumes after the last cursor delivered, so
 * nothing is lost or repeated. Receipts have no snapshot: a stream that has delivered nothing yet
 * (and was not given resumeAfter) reconnects live, and a cursor the server no longer holds ends
 * the iteration with a CursorExpiredError. Ends with the signal's reason when aborted, quietly on
 * `close()` or `break`, and with a PushgateClientError for anything not worth retrying.
 */
export class ReceiptStream extends ResumableStream<ReceiptEvent> {
  constructor(private readonly deps: ReceiptStreamDeps) {
    super(deps.request.resumeAfter, deps.request.maxReconnectAttempts);
  }

  protected async *run(): AsyncGenerator<ReceiptEvent, void, undefined> {
    const { request, retry, signal } = this.deps;
    const maxAttempts = request.maxReconnectAttempts ?? DEFAULT_MAX_RECONNECT_ATTEMPTS;
    const stop = signal === undefined ? this.closer.signal : AbortSignal.any([signal, this.closer.signal]);
    let failures = 0;
    for (;;) {
      if (this.closer.signal.aborted) return;
      signal?.throwIfAborted();
      const resumedFrom = this.lastCursor;
      const call = this.deps.raw.watchReceipts(
        WatchReceiptsRequest.fromPartial({ userIds: [...(request.userIds ?? [])], resumeAfter: resumedFrom }),
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
        for await (const response of call as AsyncIterable<WatchReceiptsResponse>) {
          if (response.event === undefined) continue;
          delivered = true;
          if (response.event.cursor !== '') this.lastCursor = response.event.cursor;
          yield response.event;
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
      if (error !== undefined && isCursorExpired(error)) throw new CursorExpiredError(error, resumedFrom);
      const overflowed = error?.code === status.RESOURCE_EXHAUSTED && error.pushgateCode === 'receipt_overflow';
      // An overflow with nothing to resume from would only overflow again from "now": let the caller see it.
      if (error !== undefined && error.code !== status.UNAVAILABLE && !(overflowed && this.lastCursor !== '')) throw error;

      const healthy = delivered || Date.now() - openedAt > retry.maxBackoffMs;
      failures = healthy ? 1 : failures + 1;
      const reason = error ?? new Error('the receipt stream ended (the node is draining or shutting down)');
      if (failures > maxAttempts) throw reason;
      const delayMs = backoffMs(retry, failures);
      this.deps.onRetry?.({ method: METHOD, error: reason, attempt: failures, delayMs });
      await sleep(delayMs, stop).catch((err: unknown) => {
        if (!this.closer.signal.aborted) throw err;
      });
      if (this.closer.signal.aborted) return;
    }
  }
}
