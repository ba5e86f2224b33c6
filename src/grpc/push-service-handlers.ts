import type { Logger } from 'pino';
import type { ApiLimitsConfig } from '../config/api-limits.js';
import type { InboxService } from '../domain/inbox-service.js';
import type { PresenceService } from '../domain/presence-service.js';
import type { PushService } from '../domain/push-service.js';
import type { ReceiptService } from '../domain/receipt-service.js';
import { isPushgateError } from '../errors.js';
import type { PushServiceServer } from '../gen/pushgate/v1/push_service.js';
import { CallCaps } from './call-caps.js';
import { deadlineResult, fitToDeadline } from './deadline-fit.js';
import { encodeSession, PushResultMessage } from './encode.js';
import { deleteInbox, listInbox } from './inbox-handlers.js';
import { dataFactsOf } from './payload-size.js';
import { pushToUsers } from './push-to-users.js';
import { getMessage, watchReceipts } from './receipt-handlers.js';
import { type InFlight, unary } from './unary.js';
import { clientTypesOf, type PushLimits, pageSizeOf, requireId, toPushRequest } from './validate.js';
import { watchPresence } from './watch-presence.js';

export interface HandlerDeps {
  readonly push: PushService;
  readonly presence: PresenceService;
  readonly inbox: InboxService;
  readonly receipts: ReceiptService;
  /** PUSHGATE_PRESENCE_BUFFER: events a WatchReceipts reader may fall behind, as for presence. */
  readonly watchBufferSize: number;
  readonly limits: PushLimits;
  /** The API's own bounds: call duration, presence request size. */
  readonly apiLimits: ApiLimitsConfig;
  readonly inFlight: InFlight;
  readonly log: Logger;
}

const MAX_REASON_LENGTH = 256;

/** The PushService RPCs: validate, call the engine, encode. No logic of their own. */
export function pushServiceHandlers(deps: HandlerDeps): PushServiceServer {
  const { push, presence, inbox, receipts, limits, apiLimits, inFlight, log } = deps;
  const calls = { inFlight, log, caps: new CallCaps(apiLimits.maxCallMs) };
  return {
    pushToUser: unary('PushToUser', calls, async (request, context) => {
      const fitted = fitToDeadline(toPushRequest(request, dataFactsOf(request), limits), context.msLeft);
      const result = await push.push(fitted.request, context.signal);
      return new PushResultMessage(deadlineResult(result, fitted.cut));
    }),

    pushToUsers: pushToUsers(push, {
      limits: { ...limits, maxBatchUsers: apiLimits.maxBatchUsers },
      inFlight,
      log,
      maxCallMs: apiLimits.maxCallMs,
    }),

    listSessions: unary('ListSessions', calls, async (request, { signal }) => {
      const userId = requireId(request.userId, 'user_id');
      const clientTypes = clientTypesOf(request.clientTypes, limits.clientTypes);
      const page = { size: pageSizeOf(request.pageSize, apiLimits.maxListPageSize), token: request.pageToken };
      const { sessions, nextPageToken } = await push.listSessions(userId, { clientTypes }, page, signal);
      return { sessions: sessions.map(encodeSession), nextPageToken };
    }),

    watchPresence: watchPresence(presence, { maxUserIds: apiLimits.maxWatchUserIds }, log),

    disconnectSessions: unary('DisconnectSessions', calls, async (request, { signal, caller, requestId }) => {
      const userId = requireId(request.userId, 'user_id');
      const sessionIds = request.sessionIds.map((id, i) => requireId(id, `session_ids[${i}]`));
      const clientTypes = clientTypesOf(request.clientTypes, limits.clientTypes);
      const reason = request.reason === '' ? 'kicked' : request.reason.slice(0, MAX_REASON_LENGTH);
      // State-changing: an audit line whatever the outcome (a refusal is also logged as such by the error mapping).
      const audit = { audit: true, method: 'DisconnectSessions', caller, userId, requestId };
      try {
        const closed = await push.disconnect(userId, { clientTypes, sessionIds }, reason, signal);
        log.info({ ...audit, outcome: 'ok', closed: closed.length }, 'sessions disconnected');
        return { disconnected: closed.map(encodeSession) };
      } catch (err) {
        log.info({ ...audit, outcome: isPushgateError(err) ? err.code : 'internal' }, 'sessions not disconnected');
        throw err;
      }
    }),

    listInbox: unary('ListInbox', calls, (request) => listInbox(inbox, request, apiLimits.maxListPageSize)),

    deleteInbox: unary('DeleteInbox', calls, (request, context) => deleteInbox(inbox, request, context, log)),

    getMessage: unary('GetMessage', calls, (request) => getMessage(receipts, request)),

    watchReceipts: watchReceipts(receipts, { maxUserIds: apiLimits.maxWatchUserIds, bufferSize: deps.watchBufferSize }, log),
  };
}
