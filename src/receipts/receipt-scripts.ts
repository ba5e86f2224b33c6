import type { RedisClient } from '../redis/client.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';

/** The receipt store's Lua scripts (src/receipts/lua), by the command name each is defined under. */
const FILES = {
  receiptsPut: 'put-1',
  receiptsUpdate: 'update-1',
  receiptsAppend: 'append-2',
  receiptsPosition: 'position-2',
  receiptsReadAfter: 'read-after-2',
} as const;

export type ReceiptScripts = Scripts<keyof typeof FILES>;

export function defineReceiptScripts(client: RedisClient): ReceiptScripts {
  return defineScripts(client, new URL('./lua/', import.meta.url), FILES);
}
