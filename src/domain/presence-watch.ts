import { isPushgateError, PushgateError } from '../errors.js';
import { EventQueue } from './event-queue.js';
import { approximateEventBytes } from './event-size.js';
import type { PresenceEvent, PresenceFeed } from './presence.js';
import type { SessionRecord } from './session.js';

/** Where a watch starts: live only, after a snapshot, or after a cursor the reader already saw. */
export type WatchStart =
  | { readonly kind: 'live' }
  | { readonly kind: 'snapshot' }
  /** `name` is what the reader called the cursor (e.g. `resume_after`): a refusal of it names it. */
  | { readonly kind: 'resume'; readonly cursor: string; readonly name: string };

export interface WatchOptions {
  readonly feed: PresenceFeed;
  /** Live events a reader may leave unread before its watch ends with `presence_overflow`. */
  readonly bufferSize: number;
  /** The same bound in approximate encoded bytes (see approximateEventBytes): whichever is passed first ends the watch. */
  readonly bufferBytes: number;
}

/** Events read from the feed per call while catching up. */
const PAGE_SIZE = 500;
/** Sessions read per snapshot page (at most MAX_SESSIONS_PAGE). */
const SNAPSHOT_PAGE_SIZE = 500;

const RESUME_HINT = 'resume with resume_after set to the last cursor received, or resubscribe with include_snapshot';

/**
 * One reader's presence events, as an async iterator paced by the reader: a snapshot or a feed
 * catch-up is read only as fast as the reader takes it, whatever its size; live events that arrive
 * meanwhile wait in order in a queue bounded by `bufferSize` events and `bufferBytes` bytes. A
 * reader that falls further behind is let go at once (the subscription ends, the queue is dropped,
 * so memory stays bounded) and its next read throws `presence_overflow`.
 *
 * A watch that starts from a snapshot or a cursor subscribes first, then catches up from the feed
 * (`readAfter`) while live events are held; then it yields the held events the feed did not
 * already cover, and goes live. `stopped` aborts when the watch ends for any reason, so a reader
 * waiting on its own backpressure wakes up and reads how it ended.
 */
export class PresenceWatch implements AsyncIterableIterator<PresenceEvent> {
  /** Live events not yet taken by the reader. */
  private readonly live = new EventQueue();
  /**
   * Live events held back while catching up, so order is kept. Those the reader has already taken
   * from the feed leave it as the feed reaches them: what is held is what the reader has not seen.
   */
  private held: EventQueue | undefined;
  /**
   * Feed position this watch caught up to; undefined for a live-only watch. A live event not
   * after it was already yielded from the feed: a subscription may deliver an event after
   * `readAfter` returned it (at once for held events, and later too in an asynchronous registry).
   * It stays where catch-up ended: a live event's own cursor may lag this position on other
   * shards (cluster mode), so advancing to it could make yielded events look new again.
   */
  private position: string | undefined;
  /** The first event the subscription delivered while catching up, wanted or not: where live events begin. */
  private firstLive: PresenceEvent | undefined;
  /** The snapshot or feed catch-up, a page at a time; undefined once it is done (or for a live-only watch). */
  private catchUp: AsyncGenerator<PresenceEvent[]> | undefined;
  /**
   * The catch-up page being read, from `pageAt` on: a page is taken whole, so a reader can drain
   * it without a promise per event and pack it into messages as it does a burst of live events.
   */
  private page: PresenceEvent[] = [];
  private pageAt = 0;
  private unsubscribe: (() => void) | undefined;
  /** Why the watch ended on its own; thrown at the reader's next read. */
  private failure: PushgateError | undefined;
  private readonly ended = new AbortController();
  private wake: (() => void) | undefined;
  /** Set for the shutdown burst: no overflow check (see PresenceService.acceptFinalBurst). */
  unbounded = false;

  constructor(
    private readonly options: WatchOptions,
    private readonly users: ReadonlySet<string>,
    from: WatchStart,
    private readonly signal: AbortSignal,
    private readonly onClosed: () => void,
  ) {
    if (from.kind !== 'live') this.held = new EventQueue();
    // Subscribed before the snapshot or the first read, so every change after that point is either
    // in the feed pages or held (or both: `position` tells which to skip).
    this.unsubscribe = options.feed.subscribe(
      (event) => this.onEvent(event),
      (reason) => this.fail(new PushgateError('presence_overflow', `presence stream missed events: ${reason}; ${RESUME_HINT}`)),
    );
    if (from.kind !== 'live') this.catchUp = this.catchUpEvents(from);
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Aborts when the watch has ended, for any reason: the reader should stop waiting and read on. */
  get stopped(): AbortSignal {
    return this.ended.signal;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<PresenceEvent>> {
    try {
      while (this.catchUp !== undefined) {
        const event = this.fromPage();
        if (event !== undefined) return { value: event, done: false };
        const step = await this.catchUp.next();
        if (step.done || this.isEnding()) {
          this.catchUp = undefined;
          this.page = [];
        } else {
          this.page = step.value;
          this.pageAt = 0;
        }
      }
      for (;;) {
        if (this.failure !== undefined) throw this.failure;
        const event = this.live.shift();
        if (event !== undefined) return { value: event, done: false };
        if (this.isEnding()) return done();
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
    } catch (err) {
      this.close();
      this.failure = undefined;
      throw err;
    }
  }

  /**
   * The next event if it is already queued and nothing comes before it (catch-up, how the watch
   * ended); undefined means "call next()". Lets a reader drain a burst without a promise and a
   * microtask per event — with a hundred streams every event is read a hundred times.
   */
  poll(): PresenceEvent | undefined {
    if (this.failure !== undefined) return undefined;
    if (this.catchUp !== undefined) return this.fromPage();
    return this.live.shift();
  }

  /** The next event of the catch-up page read, if any is left (and the watch goes on). */
  private fromPage(): PresenceEvent | undefined {
    if (this.pageAt >= this.page.length || this.isEnding()) return undefined;
    return this.page[this.pageAt++];
  }

  async return(): Promise<IteratorResult<PresenceEvent>> {
    this.close();
    return done();
  }

  /** Ends the watch at shutdown: what is queued is still read, then the iteration ends. */
  finish(): void {
    this.stopListening();
  }

  private async *catchUpEvents(from: Exclude<WatchStart, { kind: 'live' }>): AsyncGenerator<PresenceEvent[]> {
    if (from.kind === 'snapshot') {
      // The position first, then the pages: a page may already hold changes the catch-up below
      // yields again; applied as set updates (see PresenceFeed.sessionsPage) they converge. One
      // page is held at a time, so a snapshot of any size takes bounded memory.
      const { feed } = this.options;
      const cursor = await feed.position();
      const userIds = [...this.users];
      const atMs = Date.now();
      for (let token: string | undefined, first = true; first || token !== undefined; first = false) {
        const page = await feed.sessionsPage(userIds, token, SNAPSHOT_PAGE_SIZE);
        if (this.isEnding()) return;
        const { sessions, sessionCounts } = page;
        yield sessions.map((session, i) => connectedInSnapshot(session, sessionCounts[i]!, atMs, cursor));
        if (this.isEnding()) return;
        token = page.next;
      }
      yield [{ kind: 'snapshot_complete', userId: '', session: undefined, reason: '', atMs, sessionCount: 0, cursor }];
      this.position = cursor;
    } else {
      this.position = from.cursor;
    }
    // Feed pages until a read comes back empty or reaches where the subscription began (from there
    // `held` has every event; waiting for an empty read could take forever while sessions keep
    // changing). When resuming, the first read is what checks the reader's cursor.
    for (let first = true; !this.isEnding(); first = false) {
      const page = await this.readPage(first && from.kind === 'resume' ? from.name : undefined);
      if (page.length === 0) break;
      if (this.isEnding()) return;
      // Handed to the reader whole: held events the page covers are no longer unread.
      this.position = page.at(-1)!.cursor;
      this.dropCoveredHeld();
      yield page.filter((event) => this.wants(event));
      if (this.firstLive !== undefined && !this.isNew(this.firstLive)) break;
    }
    // The held events the feed did not cover join the live queue in order, counted as unread like
    // any live event from now on.
    for (let event = this.held?.shift(); event !== undefined; event = this.held?.shift()) {
      if (this.isNew(event)) this.live.push(event);
    }
    this.held = undefined;
    this.firstLive = undefined;
  }

  private async readPage(cursorName: string | undefined): Promise<PresenceEvent[]> {
    try {
      return await this.options.feed.readAfter(this.position!, PAGE_SIZE);
    } catch (err) {
      // The feed's refusal of the reader's own cursor, worded to name where that cursor came from.
      if (cursorName === undefined || !isPushgateError(err) || (err.code !== 'invalid_argument' && err.code !== 'cursor_expired'))
        throw err;
      throw new PushgateError(err.code, `${cursorName}: ${err.message}`, { cause: err, details: err.details });
    }
  }

  /** Held events the feed has reached were taken from the feed: they leave `held`, so it counts only what is unread. */
  private dropCoveredHeld(): void {
    while (this.held !== undefined && this.held.size > 0 && !this.isNew(this.held.peek()!)) this.held.shift();
  }

  private onEvent(event: PresenceEvent): void {
    if (this.held !== undefined) this.firstLive ??= event;
    if (!this.wants(event)) return;
    if (this.held !== undefined) {
      if (!this.overflows(this.held, event)) this.held.push(event);
      return;
    }
    if (!this.isNew(event)) return;
    if (!this.unbounded && this.overflows(this.live, event)) return;
    this.live.push(event);
    this.wakeReader();
  }

  /** Ends the watch when `event` would take `queue` past either bound; true if it did. */
  private overflows(queue: EventQueue, event: PresenceEvent): boolean {
    const { bufferSize, bufferBytes } = this.options;
    const behind =
      queue.size >= bufferSize
        ? `${bufferSize} events behind (PUSHGATE_PRESENCE_BUFFER)`
        : queue.bytes + approximateEventBytes(event) > bufferBytes
          ? `${bufferBytes} bytes behind (PUSHGATE_PRESENCE_BUFFER_BYTES)`
          : undefined;
    if (behind === undefined) return false;
    this.fail(new PushgateError('presence_overflow', `presence stream fell more than ${behind}; ${RESUME_HINT}`));
    return true;
  }

  /** Ends the watch on its own: nothing more is queued or held, the reader's next read throws. */
  private fail(err: PushgateError): void {
    if (this.isEnding()) return;
    this.failure = err;
    this.live.clear();
    this.stopListening();
  }

  private readonly onAbort = (): void => this.close();

  /** No more events will come: the watch ended, or the reader is gone. */
  private isEnding(): boolean {
    return this.unsubscribe === undefined;
  }

  /** The reader is gone or done: everything is let go. */
  private close(): void {
    this.live.clear();
    this.stopListening();
  }

  private stopListening(): void {
    this.held = undefined;
    this.signal.removeEventListener('abort', this.onAbort);
    if (this.unsubscribe !== undefined) {
      this.unsubscribe();
      this.unsubscribe = undefined;
      this.onClosed();
    }
    this.ended.abort();
    this.wakeReader();
  }

  private wakeReader(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private wants(event: PresenceEvent): boolean {
    return this.users.size === 0 || this.users.has(event.userId);
  }

  /** False for an event this watch already yielded from the feed. */
  private isNew(event: PresenceEvent): boolean {
    return this.position === undefined || this.options.feed.follows(event, this.position);
  }
}

function done(): IteratorResult<PresenceEvent> {
  return { value: undefined, done: true };
}

function connectedInSnapshot(session: SessionRecord, sessionCount: number, atMs: number, cursor: string): PresenceEvent {
  return { kind: 'session_connected', userId: session.userId, session, reason: 'snapshot', atMs, sessionCount, cursor };
}
