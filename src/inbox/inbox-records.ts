import type { NewStoredMessage, StoredMessage } from '../domain/inbox.js';
import type { Reply } from '../redis/client.js';
import type { MessageFields } from './inbox-messages.js';

/**
 * A message as the Redis inbox keeps it: the record JSON (`m:` field, opaque to Lua) holds what
 * never changes; seq, attempts and acked types come from their own fields (inbox-keys.ts).
 */

export function recordJson(fields: MessageFields, dataJson: string): string {
  // The data is spliced in as the JSON text it already is, not parsed and written again.
  return `${JSON.stringify(fields).slice(0, -1)},"data":${dataJson}}`;
}

/** A type list as Lua finds types in it: "\napp\nweb\n" ("\n" for none). */
export function wrapTypes(types: readonly string[]): string {
  return `\n${types.map((t) => `${t}\n`).join('')}`;
}

function unwrapTypes(list: string): string[] {
  return list.length <= 1 ? [] : list.slice(1, -1).split('\n');
}

/**
 * A message as the scripts return it (`{ record JSON, acked types, attempts, seq }`, see
 * lua/_common.lua); undefined for a record that is not one (written by hand, or by a later version).
 */
export function readMessage(reply: Reply): StoredMessage | undefined {
  if (!Array.isArray(reply)) return undefined;
  const [record, acked, attempts, seq] = reply;
  let fields: Partial<NewStoredMessage>;
  try {
    fields = JSON.parse(String(record)) as Partial<NewStoredMessage>;
  } catch {
    return undefined;
  }
  if (typeof fields !== 'object' || fields === null || typeof fields.messageId !== 'string' || typeof fields.userId !== 'string') {
    return undefined;
  }
  return {
    messageId: fields.messageId,
    userId: fields.userId,
    event: String(fields.event),
    data: fields.data ?? null,
    clientTypes: Object.freeze(Array.isArray(fields.clientTypes) ? fields.clientTypes : []),
    removal: fields.removal === 'each_client_type' ? 'each_client_type' : 'any_session',
    requiredTypes: Object.freeze(Array.isArray(fields.requiredTypes) ? fields.requiredTypes : []),
    sentAtMs: Number(fields.sentAtMs),
    expiresAtMs: Number(fields.expiresAtMs),
    attempts: Number(attempts),
    seq: Number(seq),
    ackedTypes: Object.freeze(unwrapTypes(String(acked ?? ''))),
  };
}

/** The messages of a reply that is a list of them; records that do not read are left out. */
export function readMessages(reply: Reply): StoredMessage[] {
  if (!Array.isArray(reply)) return [];
  return reply.map(readMessage).filter((m) => m !== undefined);
}
