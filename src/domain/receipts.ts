import type { DeliveryStatus } from './push.js';

/**
 * Receipts: what became of a message after its push call returned. A backend asks for one by
 * message id (GetMessage) or follows receipt events (WatchReceipts), so it needs no retry table of
 * its own. Kept for messages whose reply is not the whole story: pushes with the caller's own
 * message id, with a storing delivery mode, or with wait_for ANY or NONE.
 */

/** A session's part in a message, as the receipt keeps it. */
export interface SessionReceipt {
  readonly sessionId: string;
  readonly clientType: string;
  readonly nodeId: string;
  /** `pending`: sent, not answered yet (the call returned first: wait_for ANY or NONE). */
  readonly status: DeliveryStatus | 'pending';
  /** When this status was recorded, epoch ms. */
  readonly atMs: number;
  /** Emit to ack, microseconds; 0 unless acked. */
  readonly latencyUs: number;
  /** The client's ack data (any JSON value); undefined unless acked with some. */
  readonly ackData: unknown;
  readonly error: string;
  /** Acked on a replay from the inbox, not live. */
  readonly replay: boolean;
  /** Which delivery of the message this session's status is about (1: the live push). */
  readonly attempt: number;
}

export type StorageMode = 'live' | 'store_if_unacked' | 'store';

/** Why a stored message left the inbox. */
export type RemovalReason = 'acked' | 'expired' | 'dropped' | 'deleted';

export interface MessageReceipt {
  readonly messageId: string;
  readonly userId: string;
  readonly event: string;
  readonly sentAtMs: number;
  readonly mode: StorageMode;
  /** In the user's inbox now. */
  readonly stored: boolean;
  /** When a stored message expires; 0 when never stored. */
  readonly expiresAtMs: number;
  /** Set once a stored message left the inbox: why and when. */
  readonly removed: { readonly reason: RemovalReason; readonly atMs: number } | undefined;
  /** One entry per session that was sent the message (live or replayed), in the order first sent. */
  readonly sessions: readonly SessionReceipt[];
}

export type ReceiptEventKind =
  /** A session acked the message (`sessionId` set): late, after the call returned, or on a replay. */
  | 'acked'
  /** The message was kept in the inbox. */
  | 'stored'
  /** It left the inbox unacked at its TTL. */
  | 'expired'
  /** It was dropped unacked to make room in a full inbox. */
  | 'dropped'
  /** DeleteInbox removed it. */
  | 'deleted';

export interface ReceiptEvent {
  /** Opaque; `readAfter(cursor)` resumes after this event. */
  readonly cursor: string;
  readonly kind: ReceiptEventKind;
  readonly messageId: string;
  readonly userId: string;
  /** The acking session for `acked`; '' otherwise. */
  readonly sessionId: string;
  readonly clientType: string;
  readonly atMs: number;
  /** `acked` on a replay from the inbox. */
  readonly replay: boolean;
}

export type NewReceiptEvent = Omit<ReceiptEvent, 'cursor'>;

/** A change to a receipt, applied before its event (if any) is appended. */
export interface ReceiptChange {
  /** Sets these sessions' entries (each added if new, replaced if the session has one). */
  readonly sessions?: readonly SessionReceipt[];
  readonly stored?: boolean;
  readonly expiresAtMs?: number;
  readonly removed?: { readonly reason: RemovalReason; readonly atMs: number };
}

export type ReceiptListener = (event: ReceiptEvent) => void;

/**
 * Contract:
 * - `put` writes a whole receipt, kept `retentionMs`; `update` changes one (session entries, stored,
 *   expiry, removal) atomically, then appends `event`: a listener that reads the receipt on hearing
 *   the event sees the change. If the store fails in between, `update` rejects and the change may
 *   be kept without its event; repeating the update is safe. An `update` of a receipt that is not
 *   kept (never put, or past its retention) still appends the event.
 * - Events get cursors in append order across every node sharing the store; listeners (on every
 *   node) are told each event once, in cursor order per message id.
 * - `readAfter(cursor)` returns the events after it, oldest first, up to `limit`, while they are
 *   retained (bounded by count and age); an older or unknown cursor rejects with
 *   PushgateError `cursor_expired`. `position()` is the cursor of the newest event (or the start).
 * - A listener that throws does not stop the others.
 * - Calls that cannot reach the store reject with PushgateError `registry_unavailable` promptly.
 */
export interface ReceiptStore {
  put(receipt: MessageReceipt, retentionMs: number): Promise<void>;
  update(messageId: string, change: ReceiptChange, event: NewReceiptEvent | undefined): Promise<void>;
  get(messageId: string): Promise<MessageReceipt | undefined>;
  position(): Promise<string>;
  readAfter(cursor: string, limit: number): Promise<ReceiptEvent[]>;
  /** Listens for every event appended from now on; returns the unsubscribe function. */
  subscribe(listener: ReceiptListener): () => void;
  close(): Promise<void>;
}
