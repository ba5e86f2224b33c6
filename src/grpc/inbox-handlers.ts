import type { Logger } from 'pino';
import type { StoredMessage } from '../domain/inbox.js';
import type { InboxService } from '../domain/inbox-service.js';
import { isPushgateError, PushgateError } from '../errors.js';
import { type InboxMessage, RemovalPolicy } from '../gen/pushgate/v1/inbox.js';
import type { DeleteInboxRequest, DeleteInboxResponse, ListInboxRequest, ListInboxResponse } from '../gen/pushgate/v1/push_service.js';
import type { CallContext } from './unary.js';
import { pageSizeOf, requireId } from './validate.js';

/** A stored message as ListInbox returns it. */
export function encodeStoredMessage(message: StoredMessage): InboxMessage {
  return {
    messageId: message.messageId,
    event: message.event,
    data: message.data,
    clientTypes: [...message.clientTypes],
    removal:
      message.removal === 'each_client_type' ? RemovalPolicy.REMOVAL_POLICY_EACH_CLIENT_TYPE : RemovalPolicy.REMOVAL_POLICY_ANY_SESSION,
    sentAt: new Date(message.sentAtMs),
    expiresAt: new Date(message.expiresAtMs),
    attempts: message.attempts,
    ackedClientTypes: [...message.ackedTypes],
    seq: message.seq,
  };
}

/** A ListInbox page token is the seq of the page's last message, in decimal. */
function afterSeqOf(token: string): number {
  if (token === '') return 0;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(token) || !Number.isSafeInteger(Number(token))) {
    throw new PushgateError('invalid_argument', 'page_token is not one this server returned: pass next_page_token unchanged');
  }
  return Number(token);
}

export async function listInbox(inbox: InboxService, request: ListInboxRequest, maxPageSize: number): Promise<ListInboxResponse> {
  const userId = requireId(request.userId, 'user_id');
  const size = pageSizeOf(request.pageSize, maxPageSize);
  const page = await inbox.list(userId, afterSeqOf(request.pageToken), size);
  return {
    messages: page.messages.map(encodeStoredMessage),
    nextPageToken: page.nextAfterSeq === undefined ? '' : String(page.nextAfterSeq),
  };
}

/** State-changing: an audit line whatever the outcome, as DisconnectSessions has. */
export async function deleteInbox(
  inbox: InboxService,
  request: DeleteInboxRequest,
  context: Pick<CallContext, 'caller' | 'requestId'>,
  log: Logger,
): Promise<DeleteInboxResponse> {
  const userId = requireId(request.userId, 'user_id');
  if (request.all && request.messageIds.length > 0) {
    throw new PushgateError('invalid_argument', 'message_ids cannot be combined with all: name messages, or set all');
  }
  if (!request.all && request.messageIds.length === 0) {
    throw new PushgateError('invalid_argument', 'message_ids is required unless all is set');
  }
  const ids = request.all ? 'all' : request.messageIds.map((id, i) => requireId(id, `message_ids[${i}]`));
  const audit = { audit: true, method: 'DeleteInbox', caller: context.caller, userId, requestId: context.requestId };
  try {
    const deleted = (await inbox.remove(userId, ids)).length;
    log.info({ ...audit, outcome: 'ok', deleted, all: request.all }, 'inbox messages deleted');
    return { deleted };
  } catch (err) {
    log.info({ ...audit, outcome: isPushgateError(err) ? err.code : 'internal' }, 'inbox messages not deleted');
    throw err;
  }
}
