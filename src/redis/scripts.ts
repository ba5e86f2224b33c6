import { readFileSync } from 'node:fs';
import type { RedisClient, Reply } from './client.js';
import { observerOf } from './observe.js';

const PRELUDE = new URL('./lua/prelude.lua', import.meta.url);

/** The key count is part of each file name (`verb-<numKeys>.lua`): every script names its keys up front. */
function keyCount(file: string): number {
  const match = /-(\d+)$/.exec(file);
  if (match === null) throw new Error(`Lua script file "${file}" must be named <verb>-<numKeys>`);
  return Number(match[1]);
}

type Arg = string | number;

/**
 * Defines a room's Lua scripts on a client: `files` maps each command name to a file in `dir`
 * (one script per operation, each opening with a header that lists KEYS, ARGV and the reply).
 * Every script gets the shared prelude, then the room's `_common.lua` if it has one. ioredis
 * `defineCommand` loads each once per connection (EVALSHA, falling back to EVAL after a Redis
 * restart flushed the script cache). Command names are global to the client: rooms prefix theirs.
 */
export function defineScripts<Name extends string>(client: RedisClient, dir: URL, files: Readonly<Record<Name, string>>): Scripts<Name> {
  const common = readOptional(new URL('_common.lua', dir));
  const prelude = `${readFileSync(PRELUDE, 'utf8')}\n${common}`;
  for (const [name, file] of Object.entries<string>(files)) {
    const body = readFileSync(new URL(`${file}.lua`, dir), 'utf8');
    client.defineCommand(name, { lua: `${prelude}\n${body}`, numberOfKeys: keyCount(file) });
  }
  return new Scripts<Name>(client);
}

/** Typed calls of the scripts defined on one client. */
export class Scripts<Name extends string> {
  constructor(private readonly client: RedisClient) {}

  run(name: Name, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const command = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>)[name]!;
    const observer = observerOf(this.client);
    if (observer === undefined) return command.call(this.client, ...keys, ...args);
    const startedAt = performance.now();
    const seconds = (): number => (performance.now() - startedAt) / 1000;
    return command.call(this.client, ...keys, ...args).then(
      (reply) => {
        observer.command(name, seconds(), false);
        return reply;
      },
      (err: unknown) => {
        observer.command(name, seconds(), true);
        throw err;
      },
    );
  }
}

function readOptional(url: URL): string {
  try {
    return readFileSync(url, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
