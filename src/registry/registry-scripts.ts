import type { RedisClient } from '../redis/client.js';
import { defineScripts, type Scripts } from '../redis/scripts.js';

/** The registry's Lua scripts (src/registry/lua), by the command name each is defined under. */
const FILES = {
  pgRegister: 'register-5',
  pgUnregister: 'unregister-5',
  pgTouch: 'touch-n',
  pgPage: 'page-1',
  pgReadAfter: 'read-after-2',
  pgPosition: 'position-2',
  pgReap: 'reap-n',
  pgSync: 'sync-n',
} as const;

export type RegistryScripts = Scripts<keyof typeof FILES>;

export function defineRegistryScripts(client: RedisClient): RegistryScripts {
  return defineScripts(client, new URL('./lua/', import.meta.url), FILES);
}
