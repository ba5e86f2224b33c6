import type { BatchSummary, Delivery, DeliveryStatus as DomainDeliveryStatus, PushResult, UserPushResult } from '../domain/push.js';
import type { SessionRecord } from '../domain/session.js';
import {
  DeliveryStatus,
  type PushToUserResponse,
  type PushToUsersResponse,
  type SessionDelivery,
  type UserPushResult as UserPushResultMessage,
} from '../gen/pushgate/v1/push_service.js';
import type { Session } from '../gen/pushgate/v1/session.js';

/** Domain values to wire messages. ts-proto encodes these plain objects; no JSON step in between. */

export const DELIVERY_STATUS: Readonly<Record<DomainDeliveryStatus, DeliveryStatus>> = {
  acked: DeliveryStatus.DELIVERY_STATUS_ACKED,
  timeout: DeliveryStatus.DELIVERY_STATUS_TIMEOUT,
  disconnected: DeliveryStatus.DELIVERY_STATUS_DISCONNECTED,
  sent: DeliveryStatus.DELIVERY_STATUS_SENT,
  failed: DeliveryStatus.DELIVERY_STATUS_FAILED,
  pending: DeliveryStatus.DELIVERY_STATUS_PENDING,
};

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
    stored: result.stored,
    duplicate: result.duplicate === true,
  };
}

/**
 * What one message of a PushToUsers stream carries: a user's result (`user_result`), several
 * (`user_results`, for a caller that set max_results_per_message), or the summary, last.
 */
export type BatchMessageContent =
  | { readonly kind: 'user'; readonly result: UserPushResult }
  | { readonly kind: 'users'; readonly results: readonly UserPushResult[] }
  | { readonly kind: 'summary'; readonly summary: BatchSummary };

function encodeUserResult(result: UserPushResult): UserPushResultMessage {
  return { userId: result.userId, ...encodePushResult(result) };
}

export function encodeBatchItem(content: BatchMessageContent): PushToUsersResponse {
  if (content.kind === 'summary') return { summary: content.summary, userResults: [] };
  if (content.kind === 'users') return { userResult: undefined, userResults: content.results.map(encodeUserResult) };
  return { userResult: encodeUserResult(content.result), userResults: [] };
}

/**
 * A PushToUsers stream message that keeps what it stands for, so push-encoding.ts writes its
 * bytes straight from the domain results (a thousand users' per batch). Its fields are made on
 * first read, for ts-proto or whoever else reads them.
 */
export class BatchItemMessage implements PushToUsersResponse {
  private fields: PushToUsersResponse | undefined;

  constructor(readonly item: BatchMessageContent) {}

  get userResult(): PushToUsersResponse['userResult'] {
    this.fields ??= encodeBatchItem(this.item);
    return this.fields.userResult;
  }

  get summary(): PushToUsersResponse['summary'] {
    this.fields ??= encodeBatchItem(this.item);
    return this.fields.summary;
  }

  get userResults(): PushToUsersResponse['userResults'] {
    this.fields ??= encodeBatchItem(this.item);
    return this.fields.userResults;
  }
}

/** The same for a PushToUser reply: push-encoding.ts writes it from `result`. */
export class PushResultMessage implements PushToUserResponse {
  private fields: PushToUserResponse | undefined;

  constructor(readonly result: PushResult) {}

  get messageId(): string {
    return this.encoded().messageId;
  }

  get deliveries(): SessionDelivery[] {
    return this.encoded().deliveries;
  }

  get acked(): number {
    return this.encoded().acked;
  }

  get timedOut(): number {
    return this.encoded().timedOut;
  }

  get failed(): number {
    return this.encoded().failed;
  }

  get stored(): boolean {
    return this.encoded().stored;
  }

  get duplicate(): boolean {
    return this.encoded().duplicate;
  }

  private encoded(): PushToUserResponse {
    this.fields ??= encodePushResult(this.result);
    return this.fields;
  }
}
