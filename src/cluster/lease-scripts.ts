import type { RedisClient } from '../redis/client.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';

/** Membership's Lua scripts (src/cluster/lua), by the command name each is defined under. */
const FILES = {
  pgLease: 'lease-2',
  pgLapsed: 'lapsed-1',
  pgForget: 'forget-2',
} as const;

export type LeaseScripts = Scripts<keyof typeof FILES>;

export function defineLeaseScripts(client: RedisClient): LeaseScripts {
  return defineScripts(client, new URL('./lua/', import.meta.url), FILES);
}
