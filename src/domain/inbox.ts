/**
 * The offline inbox: pushes kept for a user until a session of theirs acks them, so a phone in a
 * tunnel or a closed browser gets them when it comes back (issue 12). The memory implementation
 * serves one node and is lost on restart; the Redis one keeps each user's inbox in the user's
 * registry shard (one hash tag), so every node of a cluster reads and acks the same messages.
 */

/** When a stored message leaves the inbox once acked. */
export type RemovalPolicy =
  /** The first ack by any session of the user removes it (the default). */
  | 'any_session'
  /** One session of each required client type must ack it. */
  | 'each_client_type';

/** What storing into a full inbox (PUSHGATE_INBOX_MAX_MESSAGES) does. */
export type InboxFullPolicy =
  /** The oldest messages make room; each dropped one is reported (counter, receipt). */
  | 'drop_oldest'
  /** The new message is refused: `inbox_full` (RESOURCE_EXHAUSTED). */
  | 'refuse_new';

/** A message to keep, as the push service hands it over. */
export interface NewStoredMessage {
  /** Unique within the user's inbox: storing an id already there changes nothing. */
  readonly messageId: string;
  readonly userId: string;
  readonly event: string;
  /** Any JSON value: stored as its JSON text. */
  readonly data: unknown;
  /** The push's client-type filter: replayed only to sessions of these types. Empty: every type. */
  readonly clientTypes: readonly string[];
  readonly removal: RemovalPolicy;
  /** `each_client_type`: the types that must each ack it (the filter, or every configured type). */
  readonly requiredTypes: readonly string[];
  /** When the push was made (meta.sentAt), epoch ms. */
  readonly sentAtMs: number;
  /** After this, epoch ms, it is gone (reported once by `expire`). */
  readonly expiresAtMs: number;
  /** Deliveries already made before it was stored (live ones): meta.attempt counts on from here. */
  readonly attempts: number;
}

/** A message in a user's inbox. */
export interface StoredMessage extends NewStoredMessage {
  /** Its place in the user's inbox: grows with each message stored for the user (push order). */
  readonly seq: number;
  /** Client types whose sessions have acked it so far (`each_client_type`). */
  readonly ackedTypes: readonly string[];
}

export interface InboxLimits {
  /** Most messages one user's inbox holds (PUSHGATE_INBOX_MAX_MESSAGES). */
  readonly maxMessages: number;
  readonly whenFull: InboxFullPolicy;
}

export interface StoreResult {
  /** False when the message id was already in the inbox (nothing changed). */
  readonly stored: boolean;
  /** Messages dropped to make room (`drop_oldest`), oldest first. */
  readonly dropped: readonly StoredMessage[];
}

export type AckResult =
  /** The ack removed the message (`any_session`, or the last required type acked). */
  | 'removed'
  /** Recorded; other client types still have to ack it. */
  | 'kept'
  /** Not in the inbox (already removed, expired, never stored): a no-op. */
  | 'unknown';

export interface InboxPage {
  readonly messages: StoredMessage[];
  /** Pass as `afterSeq` for the next page; undefined when this was the last. */
  readonly nextAfterSeq: number | undefined;
}

/**
 * Contract:
 * - Each operation is atomic per user: a reader sees a message fully stored or not at all; the cap
 *   is never exceeded, even with concurrent stores from several nodes.
 * - `seq` is strictly increasing per user in store order; pages and replays come in seq order.
 * - Expired messages (expiresAtMs <= now) are never returned by `claimForReplay`/`list`, and `expire`
 *   reports each exactly once across every node sharing the store (then it is gone).
 * - `ack` is idempotent: a second ack of a removed message is `unknown` and changes nothing. An ack
 *   of a message past its expiry that no sweep has taken yet still counts (it was delivered), and
 *   `expire` then does not report it.
 * - Calls that cannot reach the store reject with PushgateError `registry_unavailable` promptly.
 */
export interface Inbox {
  /** Keeps a message; a full inbox drops the oldest or throws `inbox_full`, as `limits` say. */
  store(message: NewStoredMessage, limits: InboxLimits, nowMs: number): Promise<StoreResult>;
  /**
   * What a newly connected session of `clientType` should replay: unexpired messages with
   * seq > afterSeq whose filter admits the type and which that type has not acked yet, oldest
   * first, at most `limit`. Each returned message's `attempts` is counted up by one (it is about to
   * be delivered again), and the returned value already includes that count.
   */
  claimForReplay(userId: string, clientType: string, afterSeq: number, limit: number, nowMs: number): Promise<StoredMessage[]>;
  /** A session of `clientType` acked the message. */
  ack(userId: string, messageId: string, clientType: string): Promise<AckResult>;
  /** One page of the user's unexpired messages, oldest first. */
  list(userId: string, afterSeq: number, limit: number, nowMs: number): Promise<InboxPage>;
  /** Removes the given messages (all of them with `'all'`); resolves with the ids of those it removed. */
  remove(userId: string, messageIds: readonly string[] | 'all'): Promise<string[]>;
  /** Removes up to `limit` messages whose expiry is <= nowMs, across all users, and returns them. */
  expire(nowMs: number, limit: number): Promise<StoredMessage[]>;
  close(): Promise<void>;
}

/** Whether a session of `clientType` should get a message stored with this filter. */
export function admitsType(clientTypes: readonly string[], clientType: string): boolean {
  return clientTypes.length === 0 || clientTypes.includes(clientType);
}
