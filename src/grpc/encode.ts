import type { BatchItem, Delivery, DeliveryStatus as DomainDeliveryStatus, PushResult } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import {
  DeliveryStatus,
  type PushToUserResponse,
  type PushToUsersResponse,
  type SessionDelivery,
} from '../gen/pushgate/v1/push_service.js';
import type { Session } from '../gen/pushgate/v1/session.js';

/** Domain values to wire messages. ts-proto encodes these plain objects; no JSON step in between. */

const DELIVERY_STATUS = {
  acked: DeliveryStatus.DELIVERY_STATUS_ACKED,
  timeout: DeliveryStatus.DELIVERY_STATUS_TIMEOUT,
  disconnected: DeliveryStatus.DELIVERY_STATUS_DISCONNECTED,
  sent: DeliveryStatus.DELIVERY_STATUS_SENT,
  failed: DeliveryStatus.DELIVERY_STATUS_FAILED,
} as const satisfies Record<DomainDeliveryStatus, DeliveryStatus>;

export function encodeSession(session: SessionRecord): Session {
  return {
    sessionId: session.sessionId,
    userId: session.userId,
    clientType: session.clientType,
    nodeId: session.nodeId,
    connectedAt: new Date(session.connectedAtMs),
    lastSeenAt: new Date(session.lastSeenAtMs),
    remoteAddress: session.remoteAddress,
    userAgent: session.userAgent,
  };
}

function encodeDelivery(delivery: Delivery): SessionDelivery {
  return {
    session: encodeSession(delivery.session),
    status: DELIVERY_STATUS[delivery.status],
    latencyUs: delivery.latencyUs,
    // A client that acked with no argument leaves ack_data unset (Value cannot hold `undefined`).
    ackData: delivery.ackData,
    error: delivery.error,
  };
}

export function encodePushResult(result: PushResult): PushToUserResponse {
  return {
    messageId: result.messageId,
    deliveries: result.deliveries.map(encodeDelivery),
    acked: result.acked,
    timedOut: result.timedOut,
    failed: result.failed,
  };
}

/** One message of a PushToUsers stream: a user's result (like a PushToUserResponse, with its user) or the summary. */
export function encodeBatchItem(item: BatchItem): PushToUsersResponse {
  if (item.kind === 'summary') return { summary: item.summary };
  const { result } = item;
  return { userResult: { userId: result.userId, ...encodePushResult(result) } };
}
