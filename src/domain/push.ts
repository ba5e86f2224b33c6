import type { RemovalPolicy } from './inbox.js';
import type { SessionRecord } from './session.js';

/** `pending`: sent, not answered when the call returned (wait_for ANY or NONE); its receipt tells the rest. */
export type DeliveryStatus = 'acked' | 'timeout' | 'disconnected' | 'sent' | 'failed' | 'pending';

/** When a push call returns: every session answered (`all`), the first ack (`any`), or once sent (`none`). */
export type WaitFor = 'all' | 'any' | 'none';

/** What a node needs to hand a push to the sockets it holds: no user, no filter, those were resolved before. */
export interface PushMessage {
  readonly event: string;
  /** Any JSON value; passed to Socket.IO as is. */
  readonly data: unknown;
  readonly ackTimeoutMs: number;
  readonly noAck: boolean;
  readonly messageId: string;
  /** When the push was made, epoch ms: clients that ask for metadata get it as `sentAt`. */
  readonly sentAtMs: number;
  /** A replay from the offline inbox on connect (metadata `replay`); live pushes leave it unset. */
  readonly replay?: boolean;
  /** Which delivery of the message this is (metadata `attempt`); unset means the first. */
  readonly attempt?: number;
  /** The message has a receipt: an ack after the wait ended is still recorded (on the node holding the session). */
  readonly tracked?: boolean;
}

/** A push kept in the user's offline inbox (delivery mode STORE_IF_UNACKED or STORE). */
export interface StoragePolicy {
  /** `store_if_unacked`: kept only when no session acked it live; `store`: kept before it is sent, until acked. */
  readonly mode: 'store_if_unacked' | 'store';
  readonly ttlMs: number;
  readonly removal: RemovalPolicy;
}

/** One validated push, as the transports hand it to the engine. */
export interface PushRequest extends PushMessage {
  readonly userId: string;
  readonly clientTypes: readonly string[];
  /** Undefined: a live push (nothing is kept). */
  readonly storage?: StoragePolicy;
  /** The message id is the caller's own: the push is idempotent within the window, and has a receipt. */
  readonly callerMessageId?: boolean;
  /** Unset: `all`. */
  readonly waitFor?: WaitFor;
}

/** How one session took a push, as the node holding it reports it. */
export interface Outcome {
  status: DeliveryStatus;
  /** Emit to ack, microseconds; 0 unless acked. */
  latencyUs: number;
  /** The client's first ack argument; undefined unless acked with one. */
  ackData: unknown;
  /** Why it failed or disconnected; empty otherwise. */
  error: string;
}

/** One session's outcome with the session it is about: what the caller gets. */
export interface Delivery extends Outcome {
  readonly session: SessionRecord;
}

export interface PushResult {
  readonly messageId: string;
  readonly deliveries: Delivery[];
  readonly acked: number;
  readonly timedOut: number;
  readonly failed: number;
  /** The message is in the user's offline inbox after the push. */
  readonly stored: boolean;
  /** A repeat of a message id seen within the idempotency window: the first call's result, nothing delivered again. */
  readonly duplicate?: boolean;
}

export function outcome(status: DeliveryStatus, error = ''): Outcome {
  return { status, latencyUs: 0, ackData: undefined, error };
}

/** One session's outcome with the session it is about. */
export function withSession(session: SessionRecord, outcome: Outcome): Delivery {
  return { session, status: outcome.status, latencyUs: outcome.latencyUs, ackData: outcome.ackData, error: outcome.error };
}

export function summarize(messageId: string, deliveries: Delivery[]): PushResult {
  let acked = 0;
  let timedOut = 0;
  let failed = 0;
  for (const delivery of deliveries) {
    if (delivery.status === 'acked') acked++;
    else if (delivery.status === 'timeout') timedOut++;
    else if (delivery.status === 'failed' || delivery.status === 'disconnected') failed++;
  }
  return { messageId, deliveries, acked, timedOut, failed, stored: false };
}

/** One validated batch push: the same message to every session of many users. */
export interface BatchPushRequest extends PushMessage {
  /** The users; duplicates count once. `messageId` is the batch's id. */
  readonly userIds: readonly string[];
  readonly clientTypes: readonly string[];
  /** Undefined: a live push (nothing is kept). */
  readonly storage?: StoragePolicy;
}

/** One user's part of a batch: a PushResult under the user's derived message id. */
export interface UserPushResult extends PushResult {
  readonly userId: string;
}

/** A batch's totals, once every user's result is out. */
export interface BatchSummary {
  readonly messageId: string;
  readonly users: number;
  readonly usersWithoutSessions: number;
  readonly sessions: number;
  readonly acked: number;
  readonly timedOut: number;
  readonly failed: number;
  readonly sent: number;
  readonly stored: number;
}

/**
 * What a batch push yields: users' results as they complete (every result already complete when
 * the reader asks, together: how many go in one message is the transport's choice), then the
 * summary, last.
 */
export type BatchItem =
  | { readonly kind: 'users'; readonly results: readonly UserPushResult[] }
  | { readonly kind: 'summary'; readonly summary: BatchSummary };

/**
 * A user's message id within a batch: derivable by anyone who knows the batch id and the user,
 * so a backend can match a client's report (which carries neither) without a lookup table.
 */
export function userMessageId(batchId: string, userId: string): string {
  return `${batchId}:${userId}`;
}

/** Adds up a batch's user results into its summary. */
export class BatchTally {
  private users = 0;
  private usersWithoutSessions = 0;
  private sessions = 0;
  private acked = 0;
  private timedOut = 0;
  private failed = 0;
  private sent = 0;
  private stored = 0;

  constructor(private readonly messageId: string) {}

  add(result: PushResult): void {
    this.users++;
    if (result.deliveries.length === 0) this.usersWithoutSessions++;
    this.sessions += result.deliveries.length;
    this.acked += result.acked;
    this.timedOut += result.timedOut;
    this.failed += result.failed;
    if (result.stored) this.stored++;
    for (const delivery of result.deliveries) if (delivery.status === 'sent') this.sent++;
  }

  summary(): BatchSummary {
    const { messageId, users, usersWithoutSessions, sessions, acked, timedOut, failed, sent, stored } = this;
    return { messageId, users, usersWithoutSessions, sessions, acked, timedOut, failed, sent, stored };
  }
}
