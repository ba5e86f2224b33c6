import {
  type BatchPushRequest,
  type Delivery,
  type Outcome,
  type PushRequest,
  type PushResult,
  summarize,
  type UserPushResult,
  userMessageId,
  withSession,
} from './push.js';
import type { SessionRecord } from './session.js';

/** Where one session's outcome goes: its user's entry, at its place in lookup order. */
export interface Slot {
  readonly user: UserEntry;
  readonly index: number;
  readonly session: SessionRecord;
}

interface UserEntry {
  readonly userId: string;
  readonly deliveries: Delivery[];
  remaining: number;
}

/**
 * The state of one batch push: each user's deliveries as they settle, and the users that are
 * complete but not yet taken by the reader. Settling is idempotent per session (an early outcome
 * and the delivery's final list may both report it).
 */
export class BatchFanOut {
  private readonly users: UserEntry[] = [];
  /** Completed users in completion order; a taken one is cleared so a long batch holds only what is unread. */
  private readonly done: (UserPushResult | undefined)[] = [];
  private taken = 0;
  private outstanding: number;
  private wake: (() => void) | undefined;

  constructor(
    private readonly request: BatchPushRequest,
    userIds: readonly string[],
    private readonly found: ReadonlyMap<string, readonly SessionRecord[]>,
    /** The service's PushObserver: told of each user's result, as if it were one push. */
    private readonly observer: { pushed(request: PushRequest, result: PushResult): void } | undefined,
  ) {
    this.outstanding = userIds.length;
    for (const userId of userIds) {
      const sessions = found.get(userId) ?? [];
      const entry: UserEntry = { userId, deliveries: new Array(sessions.length), remaining: sessions.length };
      // Users with no session are complete now: they come out first.
      if (sessions.length === 0) this.complete(entry);
      else this.users.push(entry);
    }
  }

  /** Every session of the batch grouped by the node holding it. */
  byNode(): Map<string, Slot[]> {
    const groups = new Map<string, Slot[]>();
    for (const user of this.users) {
      for (const [index, session] of this.found.get(user.userId)!.entries()) {
        const slot = { user, index, session };
        const group = groups.get(session.nodeId);
        if (group === undefined) groups.set(session.nodeId, [slot]);
        else group.push(slot);
      }
    }
    return groups;
  }

  settle(slot: Slot, result: Outcome): void {
    const { user, index } = slot;
    if (user.deliveries[index] !== undefined) return;
    user.deliveries[index] = withSession(slot.session, result);
    if (--user.remaining === 0) this.complete(user);
  }

  /** The next completed user not yet taken; undefined when none is waiting. */
  next(): UserPushResult | undefined {
    if (this.taken === this.done.length) return undefined;
    const result = this.done[this.taken];
    this.done[this.taken++] = undefined;
    return result;
  }

  /** Resolves with the next completed user, or undefined once every user was taken. */
  async ready(): Promise<UserPushResult | undefined> {
    while (this.taken === this.done.length) {
      if (this.outstanding === 0) return undefined;
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
    return this.next();
  }

  private complete(user: UserEntry): void {
    const { request, observer } = this;
    const { userId, deliveries } = user;
    const messageId = userMessageId(request.messageId, userId);
    const { acked, timedOut, failed } = summarize(messageId, deliveries);
    const result: UserPushResult = { userId, messageId, deliveries, acked, timedOut, failed, stored: false };
    // Spelled out, not spread: this runs once per user of the batch.
    observer?.pushed(
      {
        event: request.event,
        data: request.data,
        ackTimeoutMs: request.ackTimeoutMs,
        noAck: request.noAck,
        messageId,
        sentAtMs: request.sentAtMs,
        userId,
        clientTypes: request.clientTypes,
      },
      result,
    );
    this.outstanding--;
    this.done.push(result);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
