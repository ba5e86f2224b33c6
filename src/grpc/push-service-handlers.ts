import type { Logger } from 'pino';
import type { PresenceService } from '../domain/presence-service.js';
import type { PushService } from '../domain/push-service.js';
import type { PushServiceServer } from '../gen/pushgate/v1/push_service.js';
import { encodePushResult, encodeSession } from './encode.js';
import { dataBytesOf } from './payload-size.js';
import { type InFlight, unary } from './unary.js';
import { clientTypesOf, type PushLimits, requireId, toPushRequest } from './validate.js';
import { watchPresence } from './watch-presence.js';

export interface HandlerDeps {
  readonly push: PushService;
  readonly presence: PresenceService;
  readonly limits: PushLimits;
  readonly inFlight: InFlight;
  readonly log: Logger;
}

const MAX_REASON_LENGTH = 256;

/** The PushService RPCs: validate, call the engine, encode. No logic of their own. */
export function pushServiceHandlers(deps: HandlerDeps): PushServiceServer {
  const { push, presence, limits, inFlight, log } = deps;
  return {
    pushToUser: unary('PushToUser', inFlight, log, async (request, { signal }) => {
      const result = await push.push(toPushRequest(request, dataBytesOf(request), limits), signal);
      return encodePushResult(result);
    }),

    listSessions: unary('ListSessions', inFlight, log, async (request, { signal }) => {
      const userId = requireId(request.userId, 'user_id');
      const sessions = await push.listSessions(userId, { clientTypes: clientTypesOf(request.clientTypes, limits.clientTypes) }, signal);
      return { sessions: sessions.map(encodeSession) };
    }),

    watchPresence: watchPresence(presence, log),

    disconnectSessions: unary('DisconnectSessions', inFlight, log, async (request, { signal }) => {
      const userId = requireId(request.userId, 'user_id');
      const sessionIds = request.sessionIds.map((id, i) => requireId(id, `session_ids[${i}]`));
      const clientTypes = clientTypesOf(request.clientTypes, limits.clientTypes);
      const reason = request.reason === '' ? 'kicked' : request.reason.slice(0, MAX_REASON_LENGTH);
      const closed = await push.disconnect(userId, { clientTypes, sessionIds }, reason, signal);
      return { disconnected: closed.map(encodeSession) };
    }),
  };
}
