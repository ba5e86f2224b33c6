import type { PushRequest, PushResult } from '../domain/push.js';
import { PushgateError } from '../errors.js';

/**
 * How long before the caller's deadline a push that would outlast it answers. A caller that times
 * a call out itself resets the stream (RST_STREAM), and Node's HTTP/2 server closes a connection
 * past 1,000 resets plus 33 a second (its rapid-reset guard), failing every call on it: a backend
 * whose deadlines are shorter than its ack timeouts would lose its connection many times a minute.
 * Answering first, the node sends the status and the client has nothing to reset.
 */
export const ANSWER_BEFORE_DEADLINE_MS = 50;

/**
 * The push with its ack wait cut to end `ANSWER_BEFORE_DEADLINE_MS` before the call's deadline
 * (`msLeft` from now), when the wait would last longer; `cut` says whether it was. Pushes that do
 * not wait for every ack (no_ack, wait_for ANY or NONE) are left alone.
 */
export function fitToDeadline(request: PushRequest, msLeft: number): { readonly request: PushRequest; readonly cut: boolean } {
  const budgetMs = Math.floor(msLeft) - ANSWER_BEFORE_DEADLINE_MS;
  if (request.ackTimeoutMs <= budgetMs || request.noAck || (request.waitFor ?? 'all') !== 'all') return { request, cut: false };
  return { request: { ...request, ackTimeoutMs: Math.max(1, budgetMs) }, cut: true };
}

/**
 * A push whose wait was cut (fitToDeadline) and that some session did not ack in time ends as the
 * deadline says, DEADLINE_EXCEEDED, as it did when the deadline ended it; one every session
 * answered in time is answered as usual.
 */
export function deadlineResult(result: PushResult, cut: boolean): PushResult {
  if (!cut || result.duplicate === true || result.timedOut === 0) return result;
  throw new PushgateError(
    'deadline_exceeded',
    `the call’s deadline came before ${result.timedOut} of ${result.deliveries.length} sessions acked (ack_timeout_ms is longer than the deadline allows)`,
  );
}
