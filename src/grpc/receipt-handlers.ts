import type { handleServerStreamingCall, ServerWritableStream } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ReceiptService } from '../domain/receipt-service.js';
import type { ReceiptEvent as DomainReceiptEvent, ReceiptEventKind as Kind, MessageReceipt, SessionReceipt } from '../domain/receipts.js';
import { PushgateError } from '../errors.js';
import { DeliveryMode, type ReceiptEvent, ReceiptEventKind } from '../gen/pushgate/v1/inbox.js';
import type {
  GetMessageRequest,
  GetMessageResponse,
  SessionDelivery,
  WatchReceiptsRequest,
  WatchReceiptsResponse,
} from '../gen/pushgate/v1/push_service.js';
import { abortSignalOf, callerOf, drainOrEnd, requestIdOf } from './call-context.js';
import { DELIVERY_STATUS } from './encode.js';
import { requireDecoded } from './payload-size.js';
import { toGrpcError } from './status.js';
import { requireId } from './validate.js';

const KINDS: Readonly<Record<Kind, ReceiptEventKind>> = {
  acked: ReceiptEventKind.RECEIPT_EVENT_KIND_ACKED,
  stored: ReceiptEventKind.RECEIPT_EVENT_KIND_STORED,
  expired: ReceiptEventKind.RECEIPT_EVENT_KIND_EXPIRED,
  dropped: ReceiptEventKind.RECEIPT_EVENT_KIND_DROPPED,
  deleted: ReceiptEventKind.RECEIPT_EVENT_KIND_DELETED,
};

const MODES = {
  live: DeliveryMode.DELIVERY_MODE_LIVE,
  store_if_unacked: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
  store: DeliveryMode.DELIVERY_MODE_STORE,
} as const;

export async function getMessage(receipts: ReceiptService, request: GetMessageRequest): Promise<GetMessageResponse> {
  const messageId = requireId(request.messageId, 'message_id');
  const receipt = await receipts.get(messageId);
  if (receipt === undefined) {
    throw new PushgateError(
      'message_not_found',
      `no receipt for message_id "${messageId.slice(0, 64)}": receipts are kept for pushes with the caller's own message_id, a storing delivery_mode or wait_for ANY/NONE, for PUSHGATE_RECEIPT_RETENTION_S`,
    );
  }
  return encodeReceipt(receipt);
}

export function encodeReceipt(receipt: MessageReceipt): GetMessageResponse {
  return {
    messageId: receipt.messageId,
    userId: receipt.userId,
    event: receipt.event,
    sentAt: new Date(receipt.sentAtMs),
    deliveryMode: MODES[receipt.mode],
    stored: receipt.stored,
    expiresAt: receipt.expiresAtMs === 0 ? undefined : new Date(receipt.expiresAtMs),
    removed: receipt.removed === undefined ? ReceiptEventKind.RECEIPT_EVENT_KIND_UNSPECIFIED : KINDS[receipt.removed.reason],
    removedAt: receipt.removed === undefined ? undefined : new Date(receipt.removed.atMs),
    deliveries: receipt.sessions.map((s) => sessionDelivery(receipt.userId, s)),
    attempts: receipt.sessions.map((s) => ({ attempt: s.attempt, replay: s.replay, at: new Date(s.atMs) })),
  };
}

/** A receipt knows a session by its id, client type and node: the rest of Session stays unset. */
function sessionDelivery(userId: string, session: SessionReceipt): SessionDelivery {
  return {
    session: {
      sessionId: session.sessionId,
      userId,
      clientType: session.clientType,
      nodeId: session.nodeId,
      connectedAt: undefined,
      lastSeenAt: undefined,
      remoteAddress: '',
      userAgent: '',
    },
    status: DELIVERY_STATUS[session.status],
    latencyUs: session.latencyUs,
    ackData: session.ackData,
    error: session.error,
  };
}

export function encodeReceiptEvent(event: DomainReceiptEvent): ReceiptEvent {
  return {
    cursor: event.cursor,
    kind: KINDS[event.kind],
    messageId: event.messageId,
    userId: event.userId,
    sessionId: event.sessionId,
    clientType: event.clientType,
    at: new Date(event.atMs),
    replay: event.replay,
  };
}

const METHOD = 'WatchReceipts';
const MAX_CURSOR_LENGTH = 1024;

type Call = ServerWritableStream<WatchReceiptsRequest, WatchReceiptsResponse>;

/** WatchReceipts: validate, follow the receipt events, write each with backpressure, end with OK or the mapped status. */
export function watchReceipts(
  receipts: ReceiptService,
  limits: { readonly maxUserIds: number; readonly bufferSize: number },
  log: Logger,
): handleServerStreamingCall<WatchReceiptsRequest, WatchReceiptsResponse> {
  return (call: Call) => {
    const { signal, release } = abortSignalOf(call, { alsoOn: ['close', 'error'] });
    const caller = callerOf(call);
    const fail = (err: unknown): void => {
      if (!signal.aborted) call.emit('error', toGrpcError(err, log, requestIdOf(call), METHOD, caller));
    };
    let events: AsyncGenerator<DomainReceiptEvent, void, undefined>;
    try {
      const request = requireDecoded(call.request);
      if (request.userIds.length > limits.maxUserIds) {
        throw new PushgateError(
          'invalid_argument',
          `user_ids names ${request.userIds.length} users, more than the ${limits.maxUserIds} allowed (PUSHGATE_MAX_WATCH_USER_IDS)`,
        );
      }
      const userIds = request.userIds.map((id, i) => requireId(id, `user_ids[${i}]`));
      if (request.resumeAfter.length > MAX_CURSOR_LENGTH) {
        throw new PushgateError('invalid_argument', `resume_after must be at most ${MAX_CURSOR_LENGTH} characters`);
      }
      const resumeAfter = request.resumeAfter === '' ? undefined : request.resumeAfter;
      events = receipts.watch({ userIds, resumeAfter, bufferSize: limits.bufferSize }, signal);
    } catch (err) {
      release();
      fail(err);
      return;
    }
    const drained = drainOrEnd(call, signal);
    (async () => {
      for await (const event of events) {
        if (signal.aborted) return;
        if (!call.write({ event: encodeReceiptEvent(event) })) await drained();
      }
    })()
      .then(() => {
        if (!signal.aborted) call.end();
      }, fail)
      .finally(release)
      .catch((err: unknown) => log.error({ err, method: METHOD }, 'ending a receipt stream failed'));
  };
}
