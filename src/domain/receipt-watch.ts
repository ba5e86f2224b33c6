import { PushgateError } from '../errors.js';
import type { Cancellation } from './cancellation.js';
import type { ReceiptEvent, ReceiptStore } from './receipts.js';

export interface ReceiptWatchRequest {
  /** Only these users' events; empty: every user. */
  readonly userIds: readonly string[];
  /** Resume after this cursor (every retained event after it first); undefined: live events from now. */
  readonly resumeAfter: string | undefined;
  /** Events a reader may fall behind before its stream ends with `receipt_overflow`. */
  readonly bufferSize: number;
}

/** Events read from history per page while catching up. */
const CATCH_UP_PAGE = 500;

/**
 * A stream of receipt events, paced by its reader. It subscribes first and then reads the history
 * after `resumeAfter`, so nothing falls between the two; events the history already yielded are not
 * yielded again when they arrive live. A reader further behind than `bufferSize` events is cut
 * off (a stream must not hold a node's memory hostage); it can resume from its last cursor.
 */
export async function* watchReceipts(
  store: ReceiptStore,
  request: ReceiptWatchRequest,
  signal: Cancellation,
  /** Ends the stream (shutdown): what is queued is still yielded, then it returns. */
  finish: Cancellation,
): AsyncGenerator<ReceiptEvent, void, undefined> {
  const users = request.userIds.length === 0 ? undefined : new Set(request.userIds);
  const queue: ReceiptEvent[] = [];
  let overflow = false;
  let wake: (() => void) | undefined;
  const onEvent = (event: ReceiptEvent): void => {
    if (users !== undefined && !users.has(event.userId)) return;
    if (queue.length >= request.bufferSize) overflow = true;
    else queue.push(event);
    const resolve = wake;
    wake = undefined;
    resolve?.();
  };
  const onAbort = (): void => wake?.();
  const unsubscribe = store.subscribe(onEvent);
  signal.addEventListener('abort', onAbort);
  finish.addEventListener('abort', onAbort);
  try {
    const seen = new Set<string>();
    if (request.resumeAfter !== undefined) {
      let cursor = request.resumeAfter;
      for (;;) {
        const page = await store.readAfter(cursor, CATCH_UP_PAGE);
        for (const event of page) {
          seen.add(event.cursor);
          if (users === undefined || users.has(event.userId)) yield event;
        }
        if (page.length < CATCH_UP_PAGE || signal.aborted) break;
        cursor = page[page.length - 1]!.cursor;
      }
    }
    while (!signal.aborted) {
      if (overflow) {
        throw new PushgateError(
          'receipt_overflow',
          `the stream fell more than ${request.bufferSize} receipt events behind (PUSHGATE_PRESENCE_BUFFER); resume from the last cursor`,
        );
      }
      const event = queue.shift();
      if (event === undefined) {
        if (finish.aborted) return;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (seen.size > 0 && seen.delete(event.cursor)) continue;
      yield event;
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
    finish.removeEventListener('abort', onAbort);
    unsubscribe();
  }
}
