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
  pgSnapshot: 'snapshot-4+n',
  pgReadAfter: 'read-after-2',
  pgPosition: 'position-2',
  pgReap: 'reap-6+n',
  pgSync: 'sync-5+n',
  pgLease: 'lease-2',
  pgLapsed: 'lapsed-1',
  pgForget: 'forget-2',
} as const;

export type ScriptName = keyof typeof SCRIPTS;

const LUA_DIR = new URL('./lua/', import.meta.url);

/** Fixed key count from the file name (`verb-3`); `verb-4+n` takes a variable count, given per call. */
function fixedKeyCount(file: string): number | undefined {
  const match = /-(\d+)$/.exec(file);
  return match === null ? undefined : Number(match[1]);
}

export function defineScripts(client: RedisClient): Scripts {
  const common = readFileSync(new URL('_common.lua', LUA_DIR), 'utf8');
  for (const [name, file] of Object.entries(SCRIPTS)) {
    const body = readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8');
    const numberOfKeys = fixedKeyCount(file);
    client.defineCommand(name, { lua: `${common}\n${body}`, ...(numberOfKeys !== undefined && { numberOfKeys }) });
  }
  return new Scripts(client);
}

type Arg = string | number;

/** Typed calls of the scripts defined on one client. */
export class Scripts {
  constructor(private readonly client: RedisClient) {}

  /** Runs a script with a fixed key count. */
  run(name: ScriptName, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const command = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>)[name]!;
    return command.call(this.client, ...keys, ...args);
  }

  /** Runs a script whose key count varies per call (`-n` in its name). */
  runVariadic(name: ScriptName, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const command = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>)[name]!;
    return command.call(this.client, keys.length, ...keys, ...args);
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
