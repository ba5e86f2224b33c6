import { readFileSync } from 'node:fs';
import type { RedisClient, Reply } from './client.js';
import { observerOf } from './observe.js';

const PRELUDE = new URL('./lua/prelude.lua', import.meta.url);

/**
 * The key count is part of each file name (`verb-<numKeys>.lua`): every script names its keys up
 * front. `verb-n.lua` takes as many keys as its caller passes (e.g. one per session of a batch);
 * undefined then, and `run` sends the count.
 */
function keyCount(file: string): number | undefined {
  const match = /-(\d+|n)$/.exec(file);
  if (match === null) throw new Error(`Lua script file "${file}" must be named <verb>-<numKeys> or <verb>-n`);
  return match[1] === 'n' ? undefined : Number(match[1]);
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
  const variable = new Set<string>();
  for (const [name, file] of Object.entries<string>(files)) {
    const body = readFileSync(new URL(`${file}.lua`, dir), 'utf8');
    const numberOfKeys = keyCount(file);
    if (numberOfKeys === undefined) variable.add(name);
    client.defineCommand(name, { lua: `${prelude}\n${body}`, numberOfKeys });
  }
  return new Scripts<Name>(client, variable);
}

/** Typed calls of the scripts defined on one client. */
export class Scripts<Name extends string> {
  constructor(
    private readonly client: RedisClient,
    /** Scripts whose key count is the caller's (`verb-n.lua`). */
    private readonly variable: ReadonlySet<string> = new Set(),
  ) {}

  run(name: Name, keys: readonly string[], args: readonly Arg[]): Promise<Reply> {
    const command = (this.client as unknown as Record<string, (...a: Arg[]) => Promise<Reply>>)[name]!;
    const send = this.variable.has(name)
      ? () => command.call(this.client, keys.length, ...keys, ...args)
      : () => command.call(this.client, ...keys, ...args);
    return this.observed(name, send);
  }

  /**
   * Runs a call that is no script (plain commands, a pipeline) under an operation name of its
   * own, so metrics count it like a script (e.g. a lookup that is a plain HGETALL).
   */
  observed<T>(operation: string, send: () => Promise<T>): Promise<T> {
    const observer = observerOf(this.client);
    if (observer === undefined) return send();
    const startedAt = performance.now();
    const seconds = (): number => (performance.now() - startedAt) / 1000;
    return send().then(
      (reply) => {
        observer.command(operation, seconds(), false);
        return reply;
      },
      (err: unknown) => {
        observer.command(operation, seconds(), true);
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
