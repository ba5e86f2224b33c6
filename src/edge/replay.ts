import type { Logger } from 'pino';
import { NEVER_CANCELLED } from '../domain/cancellation.js';
import type { InboxService, ReplayTarget } from '../domain/inbox-service.js';
import { outcome } from '../domain/push.js';
import type { LocalSession, LocalSessions } from './local-sessions.js';

/**
 * Replays a new session's stored messages before any live push reaches it: live pushes are held
 * from the moment the socket is accepted, the replay starts once the session is registered (so a
 * push stored meanwhile is in the inbox or on its way live, never neither), and the held pushes go
 * out, in order, once every stored message is sent. A replay that fails (the inbox's Redis is
 * down) is logged and lets the live pushes go: the messages stay stored for the next connection.
 */
export function replayTo(entry: LocalSession, local: LocalSessions, inbox: InboxService, log: Logger): void {
  entry.holdLive();
  const { userId, sessionId } = entry.record;
  const target: ReplayTarget = {
    session: entry.record,
    send: (message) => local.deliver([sessionId], message, NEVER_CANCELLED).then((outcomes) => outcomes[0] ?? outcome('failed')),
    hasLive: (messageId) => entry.holds(messageId),
    get open() {
      return entry.socket.connected;
    },
  };
  void (entry.registered ?? Promise.resolve())
    .then(() => inbox.replay(target))
    .then(
      (sent) => {
        if (sent > 0 && log.isLevelEnabled('debug')) log.debug({ sessionId, userId, sent }, 'stored messages replayed');
      },
      (err: unknown) =>
        log.warn({ sessionId, userId, reason: (err as Error).message }, 'could not replay stored messages; they stay stored'),
    )
    .finally(() => entry.releaseLive());
}
