import { PushgateError } from '../errors.js';
import type { PresenceFeed } from './presence.js';
import { PresenceWatch, type WatchStart } from './presence-watch.js';

export interface WatchRequest {
  /** The users whose events to watch; empty for every user. */
  readonly userIds: readonly string[];
  readonly from: WatchStart;
}

/**
 * Presence for any reader — the gRPC WatchPresence stream today, a dashboard or a CLI tomorrow:
 * each watch is an async iterator of events in order, paced by its reader and bounded in memory
 * (see PresenceWatch). The service knows every open watch, so shutdown can end them all.
 */
export class PresenceService {
  private readonly active = new Set<PresenceWatch>();

  constructor(
    private readonly options: {
      readonly feed: PresenceFeed;
      /** Live events a reader may leave unread before its watch ends with `presence_overflow`. */
      readonly bufferSize: number;
    },
  ) {}

  /** Starts a watch; it ends when `signal` aborts, when its reader stops iterating, or on its own (overflow, shutdown). */
  watch(request: WatchRequest, signal: AbortSignal): PresenceWatch {
    if (signal.aborted) throw new PushgateError('cancelled', 'call cancelled before its presence stream started');
    const watch: PresenceWatch = new PresenceWatch(this.options, new Set(request.userIds), request.from, signal, () =>
      this.active.delete(watch),
    );
    this.active.add(watch);
    return watch;
  }

  /** Open watches: lets tests and metrics see that readers clean up. */
  get size(): number {
    return this.active.size;
  }

  /**
   * Shutdown is about to close every local session at once. That burst is queued whole for each
   * watch rather than mistaken for a slow reader (it arrives faster than any reader can take it);
   * memory stays bounded by the sessions this node holds, and `endAll` follows.
   */
  acceptFinalBurst(): void {
    for (const watch of this.active) watch.unbounded = true;
  }

  /** Ends every watch, e.g. at shutdown: each reader still gets what was queued for it, then the end. */
  endAll(): void {
    for (const watch of [...this.active]) watch.finish();
  }
}

export type { PresenceWatch, WatchStart };
