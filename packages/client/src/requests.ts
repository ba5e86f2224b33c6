import { DeliveryMode, RemovalPolicy, WaitFor } from './gen/pushgate/v1/inbox.js';
import { DeleteInboxRequest, PushToUserRequest, PushToUsersRequest } from './gen/pushgate/v1/push_service.js';

/** What the client's inputs look like, and how they become request messages. */

/**
 * Whether a push is kept in the user's offline inbox: `'live'` (default: only sessions live now get
 * it), `'store_if_unacked'` (kept when no targeted session acked it live), `'store'` (kept until acked).
 */
export type DeliveryModeName = 'live' | 'store_if_unacked' | 'store';
/** Which acks remove a stored message: the first of any session (default), or one of each client type. */
export type RemovalName = 'any_session' | 'each_client_type';
/** When pushToUser returns: every session answered (default), the first ack, or once sent (acks recorded in the receipt). */
export type WaitForName = 'all' | 'any' | 'none';

/** A push: who, which event, what data (any JSON value), and how to wait for acks. */
export interface PushToUserInput {
  readonly userId: string;
  readonly event: string;
  /** Any JSON value; the client receives it as the event's first argument. */
  readonly data?: unknown;
  /** Only sessions of these client types; all when empty. */
  readonly clientTypes?: readonly string[];
  /** Per-session ack wait in ms; 0 or absent: the server's default. */
  readonly ackTimeoutMs?: number;
  /** Fire and forget: each reachable session is reported SENT. Cannot be stored. */
  readonly noAck?: boolean;
  /**
   * Echoed in the response; the server generates one when empty. With your own id the push is
   * idempotent within the server's PUSHGATE_IDEMPOTENCY_WINDOW_S, and the client retries it on UNAVAILABLE.
   */
  readonly messageId?: string;
  /** Keep it in the user's offline inbox, to replay on connect. Default `'live'`. */
  readonly deliveryMode?: DeliveryModeName;
  /** How long a stored message is kept unacked; 0 or absent: the server's PUSHGATE_INBOX_TTL_S. */
  readonly ttlSeconds?: number;
  /** Which acks remove a stored message. Default `'any_session'`. */
  readonly removal?: RemovalName;
  /** When the call returns. Default `'all'`. */
  readonly waitFor?: WaitForName;
}

/** A batch push: one event to every live session of many users (up to the server's PUSHGATE_MAX_BATCH_USERS). */
export interface PushToUsersInput extends Omit<PushToUserInput, 'userId' | 'waitFor'> {
  /** The users; duplicates count once. */
  readonly userIds: readonly string[];
  /** The batch's id, echoed in the summary; each user's is `<messageId>:<userId>`. Generated when empty. */
  readonly messageId?: string;
}

export interface ListSessionsInput {
  readonly userId: string;
  readonly clientTypes?: readonly string[];
  /** Sessions per page; 0 or absent: the server's maximum. */
  readonly pageSize?: number;
  /** The previous page's nextPageToken. */
  readonly pageToken?: string;
}

export interface DisconnectSessionsInput {
  readonly userId: string;
  /** Only these sessions; all (after clientTypes) when empty. */
  readonly sessionIds?: readonly string[];
  readonly clientTypes?: readonly string[];
  /** Told to each client before its socket closes; the server's default is "kicked". */
  readonly reason?: string;
}

export interface ListInboxInput {
  readonly userId: string;
  /** Messages per page; 0 or absent: the server's maximum. */
  readonly pageSize?: number;
  /** The previous page's nextPageToken. */
  readonly pageToken?: string;
}

/** Chosen messages of a user's inbox, or all of them. */
export type DeleteInboxInput =
  | { readonly userId: string; readonly messageIds: readonly string[]; readonly all?: never }
  | { readonly userId: string; readonly all: true; readonly messageIds?: never };

const MODES: Readonly<Record<DeliveryModeName, DeliveryMode>> = {
  live: DeliveryMode.DELIVERY_MODE_LIVE,
  store_if_unacked: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
  store: DeliveryMode.DELIVERY_MODE_STORE,
};
const REMOVALS: Readonly<Record<RemovalName, RemovalPolicy>> = {
  any_session: RemovalPolicy.REMOVAL_POLICY_ANY_SESSION,
  each_client_type: RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE,
};
const WAITS: Readonly<Record<WaitForName, WaitFor>> = {
  all: WaitFor.WAIT_FOR_ALL,
  any: WaitFor.WAIT_FOR_ANY,
  none: WaitFor.WAIT_FOR_NONE,
};

/** Absent stays UNSPECIFIED (0), so a request without the option is the same bytes as before it existed. */
function named<T extends number>(table: Readonly<Record<string, T>>, value: string | undefined, field: string): T | 0 {
  if (value === undefined) return 0;
  if (!Object.hasOwn(table, value)) {
    throw new TypeError(`${field} must be one of ${Object.keys(table).join(', ')}; got ${JSON.stringify(value)}`);
  }
  return table[value]!;
}

function ttlOf(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff)
    throw new TypeError(`ttlSeconds must be a whole number ≥ 0, got ${value}`);
  return value;
}

function common(input: Omit<PushToUserInput, 'userId' | 'waitFor'>) {
  return {
    event: input.event,
    data: input.data,
    clientTypes: [...(input.clientTypes ?? [])],
    ackTimeoutMs: input.ackTimeoutMs ?? 0,
    noAck: input.noAck ?? false,
    messageId: input.messageId ?? '',
    deliveryMode: named(MODES, input.deliveryMode, 'deliveryMode'),
    ttlSeconds: ttlOf(input.ttlSeconds),
    removal: named(REMOVALS, input.removal, 'removal'),
  };
}

export function pushToUserRequest(input: PushToUserInput): PushToUserRequest {
  return PushToUserRequest.fromPartial({ userId: input.userId, ...common(input), waitFor: named(WAITS, input.waitFor, 'waitFor') });
}

export function pushToUsersRequest(input: PushToUsersInput): PushToUsersRequest {
  return PushToUsersRequest.fromPartial({ userIds: [...input.userIds], ...common(input) });
}

export function deleteInboxRequest(input: DeleteInboxInput): DeleteInboxRequest {
  if (input.all === true && input.messageIds !== undefined) throw new TypeError('deleteInbox takes messageIds or all: true, not both');
  if (input.all !== true && (input.messageIds === undefined || input.messageIds.length === 0)) {
    throw new TypeError('deleteInbox needs messageIds (at least one) or all: true');
  }
  return DeleteInboxRequest.fromPartial({ userId: input.userId, messageIds: [...(input.messageIds ?? [])], all: input.all === true });
}
