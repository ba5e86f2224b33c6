import { type ClientReadableStream, Metadata, type ServiceError } from '@grpc/grpc-js';
import { type PresenceEvent, PresenceEventKind } from '../../src/gen/pushgate/v1/presence.js';
import type { ListSessionsResponse, PushServiceClient, WatchPresenceResponse } from '../../src/gen/pushgate/v1/push_service.js';
import type { PresenceChange } from './ledger.js';

// The registry as a backend sees it (ListSessions, WatchPresence), for rule 6 of the ledger.

const LIST_DEADLINE_MS = 5000;

/** Every session the registry lists for `users` (ListSessions, every page), through `client`. */
export async function listedSessions(client: PushServiceClient, users: readonly string[]): Promise<Set<string>> {
  const listed = new Set<string>();
  const page = (userId: string, pageToken: string): Promise<ListSessionsResponse> =>
    new Promise((resolve, reject) =>
      client.listSessions(
        { userId, clientTypes: [], pageSize: 0, pageToken },
        new Metadata(),
        // A node that hangs (frozen, its Redis blackholed) fails the listing rather than the run.
        { deadline: Date.now() + LIST_DEADLINE_MS },
        (err: ServiceError | null, r?: ListSessionsResponse) => (err ? reject(err) : resolve(r!)),
      ),
    );
  // A few users at a time: a thousand calls at once would only queue.
  const queue = [...users];
  const worker = async (): Promise<void> => {
    for (let userId = queue.pop(); userId !== undefined; userId = queue.pop()) {
      let token = '';
      do {
        const response = await page(userId, token);
        for (const s of response.sessions) listed.add(s.sessionId);
        token = response.nextPageToken;
      } while (token !== '');
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  return listed;
}

/**
 * A WatchPresence stream of every user, with its snapshot, kept open through faults: when the
 * stream ends (its node died, Redis went away) it is opened again from the last cursor, as a
 * backend consuming presence would do. `initial` is the snapshot; `events` what followed, in order.
 */
export class PresenceTap {
  readonly initial = new Set<string>();
  readonly events: PresenceChange[] = [];
  /** Times the stream ended and was opened again, and the ends that refused a resume. */
  reopened = 0;
  readonly refusals: string[] = [];
  private cursor = '';
  private snapshotDone = false;
  private call: ClientReadableStream<WatchPresenceResponse> | undefined;
  private closed = false;
  private readonly ready: Promise<void>;
  private markReady: () => void = () => {};

  constructor(private readonly clients: () => PushServiceClient) {
    this.ready = new Promise((resolve) => (this.markReady = resolve));
    this.open();
  }

  /** Resolves once the snapshot is complete. */
  snapshot(): Promise<void> {
    return this.ready;
  }

  close(): void {
    this.closed = true;
    this.call?.cancel();
  }

  private open(): void {
    const call = this.clients().watchPresence(
      { userIds: [], includeSnapshot: this.cursor === '', resumeAfter: this.cursor, maxEventsPerMessage: 100 },
      new Metadata(),
    );
    this.call = call;
    call.on('data', (response: WatchPresenceResponse) => {
      for (const event of response.event === undefined ? response.events : [response.event]) this.take(event);
    });
    call.on('error', (err: ServiceError) => {
      if (this.closed) return;
      if (err.code === 9 /* FAILED_PRECONDITION: the cursor is gone */) {
        // Events were lost (Redis lost its data): start over from a new snapshot, as a backend must.
        this.refusals.push(err.details);
        this.cursor = '';
        this.snapshotDone = false;
        this.initial.clear();
        this.events.length = 0;
      }
      this.reopened++;
      setTimeout(() => {
        if (!this.closed) this.open();
      }, 200);
    });
  }

  private take(event: PresenceEvent): void {
    if (event.cursor !== '') this.cursor = event.cursor;
    const sessionId = event.session?.sessionId ?? '';
    if (event.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SNAPSHOT_COMPLETE) {
      this.snapshotDone = true;
      this.markReady();
    } else if (event.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_CONNECTED) {
      if (this.snapshotDone) this.events.push({ kind: 'connected', userId: event.userId, sessionId });
      else this.initial.add(sessionId);
    } else if (event.kind === PresenceEventKind.PRESENCE_EVENT_KIND_SESSION_DISCONNECTED) {
      this.events.push({ kind: 'disconnected', userId: event.userId, sessionId });
    }
  }
}
