import { untilAborted } from './abortable.js';
import { type Cancellation, NEVER_CANCELLED } from './cancellation.js';
import type { InboxService } from './inbox-service.js';
import { type Outcome, outcome, type PushMessage, type PushRequest, type PushResult, summarize, withSession } from './push.js';
import type { ReceiptService } from './receipt-service.js';
import type { SessionRecord } from './session.js';

export interface TrackedPushDeps {
  readonly lookup: (request: PushRequest, signal: Cancellation) => Promise<SessionRecord[]>;
  /** One outcome per session in the given order; `onOutcome` may hear of some earlier (this node's sessions). */
  readonly deliver: (
    sessions: readonly SessionRecord[],
    message: PushMessage,
    signal: Cancellation,
    onOutcome?: (index: number, outcome: Outcome) => void,
  ) => Promise<Outcome[]>;
  readonly inbox: InboxService;
  readonly receipts: ReceiptService;
  /** Bookkeeping after the call returned failed (the receipt store or inbox unreachable). */
  readonly onBackgroundError: (err: unknown) => void;
}

/**
 * A push with a receipt (see ReceiptService.tracks): a storing delivery mode, wait_for ANY or
 * NONE, or the caller's own message id. The receipt is opened first, so whatever happens during the
 * delivery (a replay's ack on another session, an expiry) lands on it. With wait_for ALL the call
 * returns when every session has an outcome, as a live push does; with ANY at the first ack, with
 * NONE once the message is handed over, the other sessions PENDING: their deliveries go on (to the
 * ack timeout, not cut by the call's end) and their outcomes go to the receipt.
 */
export async function pushTracked(deps: TrackedPushDeps, request: PushRequest, signal: Cancellation): Promise<PushResult> {
  const { inbox, receipts } = deps;
  const waitFor = request.waitFor ?? 'all';
  // A live push waited for in full touches nothing else while it runs: its receipt is written once,
  // whole, at the end. Otherwise the receipt is opened first (alongside the lookup), so a change
  // during the delivery (a replay's ack of the stored copy) lands on it.
  const openFirst = request.storage !== undefined || waitFor !== 'all';
  const [sessions] = await Promise.all([
    deps.lookup(request, signal),
    openFirst ? untilAborted(receipts.opened(request), signal) : undefined,
  ]);
  // Kept before anything is sent, counting the sends about to happen: a node that dies
  // mid-delivery loses nothing, and a replay says it may be a repeat.
  if (request.storage?.mode === 'store') await untilAborted(inbox.keepBeforeSend(request, sessions.length), signal);
  const message: PushMessage = {
    event: request.event,
    data: request.data,
    ackTimeoutMs: request.ackTimeoutMs,
    noAck: request.noAck,
    messageId: request.messageId,
    sentAtMs: request.sentAtMs,
    tracked: true,
  };
  if (waitFor === 'all' || sessions.length === 0) {
    const outcomes = sessions.length === 0 || signal.aborted ? [] : await deps.deliver(sessions, message, signal);
    // Settled even when the call was cancelled: a push that reached nobody is then kept, not lost.
    const settled = await inbox.settle(request, summarize(request.messageId, inOrder(sessions, outcomes)));
    const written = openFirst ? receipts.delivered(settled) : receipts.opened(request, settled);
    await written.catch(deps.onBackgroundError);
    return settled;
  }
  const known: (Outcome | undefined)[] = new Array(sessions.length);
  let firstAck: () => void = () => {};
  const acked = new Promise<void>((resolve) => (firstAck = resolve));
  let final: Outcome[] | undefined;
  const all = deps.deliver(sessions, message, NEVER_CANCELLED, (i, o) => {
    known[i] = o;
    if (o.status === 'acked') firstAck();
  });
  const done = all.then((outcomes) => {
    final = outcomes;
  });
  if (waitFor === 'any') await untilAborted(Promise.race([acked, done]), signal);
  const early = summarize(
    request.messageId,
    sessions.map((session, i) => withSession(session, final?.[i] ?? known[i] ?? outcome('pending'))),
  );
  const shown: PushResult = { ...early, stored: request.storage?.mode === 'store' };
  await receipts.delivered(shown).catch(deps.onBackgroundError);
  void done
    .then(async () => {
      const settled = await inbox.settle(request, summarize(request.messageId, inOrder(sessions, final!)));
      await receipts.settled(shown, settled);
    })
    .catch(deps.onBackgroundError);
  return shown;
}

function inOrder(sessions: readonly SessionRecord[], outcomes: readonly Outcome[]) {
  return sessions.map((session, i) => withSession(session, outcomes[i] ?? outcome('failed', 'no outcome reported')));
}
