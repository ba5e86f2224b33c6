import type { RedisClient } from '../redis/client.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';

/** The registry's Lua scripts (src/registry/lua), by the command name each is defined under. */
const FILES = {
  pgRegister: 'register-7',
  pgUnregister: 'unregister-7',
  pgLookup: 'lookup-3',
  pgLookupMany: 'lookup-many-3',
  pgTouch: 'touch-1',
  pgPage: 'page-3',
  pgReadAfter: 'read-after-2',
  pgPosition: 'position-2',
  pgReap: 'reap-8',
  pgSync: 'sync-7',
} as const;

export type RegistryScripts = Scripts<keyof typeof FILES>;

export function defineRegistryScripts(client: RedisClient): RegistryScripts {
  return defineScripts(client, new URL('./lua/', import.meta.url), FILES);
}
