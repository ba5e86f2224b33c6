import type { InboxLimits, NewStoredMessage } from '../domain/inbox.js';
import { PushgateError } from '../errors.js';

/**
 * What both inboxes do alike with a message handed to `store`: its data as JSON text, its type
 * lists checked and without repeats, and the error a full inbox answers with.
 */

/** A message's fields as kept, apart from data (kept as JSON text), seq and what changes (attempts, acks). */
export interface MessageFields {
  readonly messageId: string;
  readonly userId: string;
  readonly event: string;
  readonly clientTypes: readonly string[];
  readonly removal: NewStoredMessage['removal'];
  readonly requiredTypes: readonly string[];
  readonly sentAtMs: number;
  readonly expiresAtMs: number;
}

/** The message's fixed fields (frozen, type lists without repeats) and its data as JSON text. */
export function keptForm(message: NewStoredMessage): { fields: MessageFields; dataJson: string } {
  const fields: MessageFields = Object.freeze({
    messageId: message.messageId,
    userId: message.userId,
    event: message.event,
    clientTypes: typeList(message.clientTypes, 'clientTypes'),
    removal: message.removal,
    requiredTypes: typeList(message.requiredTypes, 'requiredTypes'),
    sentAtMs: message.sentAtMs,
    expiresAtMs: message.expiresAtMs,
  });
  return { fields, dataJson: jsonText(message.data) };
}

function typeList(types: readonly string[], field: string): readonly string[] {
  // The Redis inbox keeps type lists "\n"-separated; config allows a-z 0-9 _ - only.
  const bad = types.find((t) => t === '' || t.includes('\n'));
  if (bad !== undefined) throw new PushgateError('invalid_argument', `${field} holds an empty client type or one with a line break`);
  return Object.freeze([...new Set(types)]);
}

function jsonText(data: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(data);
  } catch (err) {
    throw new PushgateError('invalid_argument', `data is not a JSON value: ${(err as Error).message}`, { cause: err });
  }
  return text ?? 'null';
}

/** A full inbox with the refuse_new policy (or a cap of 0). */
export function inboxFull(userId: string, limits: InboxLimits): PushgateError {
  return new PushgateError(
    'inbox_full',
    `the offline inbox of user "${userId}" already holds ${limits.maxMessages} messages (PUSHGATE_INBOX_MAX_MESSAGES)`,
  );
}
