import { readFileSync } from 'node:fs';
import type { Cluster, Redis } from 'ioredis';

/** A standalone or cluster ioredis client: the registry works with either. */
export type RedisClient = Redis | Cluster;

/** A script reply element as ioredis hands it over (RESP arrays become JS arrays, nil becomes null). */
export type Reply = string | number | null | Reply[];

/**
 * The registry's Lua scripts (src/registry/lua, one per operation, each opening with a header that
 * lists KEYS, ARGV and the reply). `_common.lua` is prepended to each. ioredis `defineCommand`
 * loads each once per connection (EVALSHA, falling back to EVAL after a Redis restart flushed the
 * script cache).
 */
const SCRIPTS = {
  pgRegister: 'register-6',
  pgUnregister: 'unregister-6',
  pgLookup: 'lookup-3',
  pgTouch: 'touch-2',
  pgSnapshot: 'snapshot-5',
  pgReadAfter: 'read-after-2',
  pgPosition: 'position-2',
  pgReap: 'reap-7',
  pgSync: 'sync-6',
  pgLease: 'lease-2',
  pgLapsed: 'lapsed-1',
  pgForget: 'forget-2',
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const LUA_DIR = new URL('./lua/', import.meta.url);

/** The key count is part of each file name (`verb-<numKeys>.lua`): every script names its keys up front. */
function keyCount(file: string): number {
  return Number(/-(\d+)$/.exec(file)![1]);
}

export function defineScripts(client: RedisClient): Scripts {
  const common = readFileSync(new URL('_common.lua', LUA_DIR), 'utf8');
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const body = readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8');
    client.defineCommand(name, { lua: `${common}\n${body}`, numberOfKeys: keyCount(file) });
  }
  return new Scripts(client);
}

type Arg = string | number;

/** Typed calls of the scripts defined on one client. */
export class Scripts {
  constructor(private readonly client: RedisClient) {}

  run(name: ScriptName, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const command = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>)[name]!;
    return command.call(this.client, ...keys, ...args);
  }
}

/** ioredis's wording, in words an operator reading a gRPC status acts on. */
export function describeRedisError(err: Error): string {
  if (err.message.includes('enableOfflineQueue') || err.message.includes('Connection is closed')) {
    return 'not connected to Redis (REDIS_URL); reconnecting';
  }
  if (err.message.includes('timed out')) return 'Redis did not answer in time (PUSHGATE_REDIS_COMMAND_TIMEOUT_MS)';
  return `Redis error: ${err.message}`;
}
