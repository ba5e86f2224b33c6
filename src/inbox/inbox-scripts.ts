import type { RedisClient } from '../redis/client.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';

/** The inbox's Lua scripts (src/inbox/lua), by the command name each is defined under. */
const FILES = {
  inboxStore: 'store-4',
  inboxClaim: 'claim-3',
  inboxList: 'list-3',
  inboxAck: 'ack-4',
  inboxRemove: 'remove-4',
  inboxExpire: 'expire-4',
} as const;

export type InboxScripts = Scripts<keyof typeof FILES>;

export function defineInboxScripts(client: RedisClient): InboxScripts {
  return defineScripts(client, new URL('./lua/', import.meta.url), FILES);
}
