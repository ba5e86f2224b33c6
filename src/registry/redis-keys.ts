/**
 * The registry's Redis keys, built in one place (cluster membership and the node bus build theirs
 * in src/cluster/cluster-keys.ts). Layout (P = key prefix, S = shard number, U = user key, see
 * userKey; README "Redis key layout" describes each key):
 *
 *   P{sS}:u:U              HASH   one user's sessions, three fields per session:
 *                                   r:<session id>  session record JSON (without last_seen_at); opaque to Lua
 *                                   s:<session id>  last_seen_at, epoch ms (written in batches)
 *                                   o:<session id>  id of the node holding it
 *                                 so a push lookup is one plain HGETALL
 *   P{sS}:by-user          ZSET   every session of the shard, score 0, member `<user key>\0\0<session id>`:
 *                                 one user's sessions are one lexicographic range (pages, counts)
 *   P{sS}:node:<node id>   SET    index members (as in by-user) of the sessions that node holds
 *   P{sS}:reaped:<node id> STRING set when a node's sessions were reaped; tells a node that comes
 *                                 back whether its sessions' departure was announced (TTL 1 day)
 *   P{sS}:events           STREAM presence events, trimmed by count and age
 *   P{sS}:epoch            STRING identity of this shard's event stream; a new one after Redis lost
 *                                 its data, so old cursors are refused instead of misread
 *
 * The `{…}` hash tag puts a shard's keys in one Redis Cluster slot, so each Lua script touches one
 * slot. A user always maps to the same shard, so one user's keys share a slot. Every script names
 * all the keys it touches up front (no key is built inside a script): where a script works on
 * sessions it learns of only from an index (reaping a node, paging), the caller reads the index
 * with a plain command first and passes the user hashes as keys, and the script re-checks. No
 * script decodes JSON: what Lua needs (a session's user, its node) is in index members and `o:` fields.
 */
export class RegistryKeys {
  /** Built once: every push looks up its user's shard keys. */
  private readonly byShard: readonly ShardKeys[];

  constructor(
    readonly prefix: string,
    readonly shards: number,
  ) {
    this.byShard = Array.from({ length: shards }, (_, shard) => shardKeys(this.tag(shard)));
  }

  /** The shard a user's keys live in: a stable hash of the user id (FNV-1a), so every node agrees. */
  shardOf(userId: string): number {
    if (this.shards === 1) return 0;
    let hash = 0x811c9dc5;
    for (let i = 0; i < userId.length; i++) {
      hash ^= userId.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193);
    }
    return (hash >>> 0) % this.shards;
  }

  shard(shard: number): ShardKeys {
    return this.byShard[shard]!;
  }

  /** The hash tag and prefix every key of a shard begins with (`P{sS}:`): other rooms keep a user's keys in the user's shard. */
  tag(shard: number): string {
    return `${this.prefix}{s${shard}}:`;
  }
}

export interface ShardKeys {
  readonly byUser: string;
  readonly events: string;
  readonly epoch: string;
  /** The sessions HASH of the user with this user key (see userKey). */
  user(userKey: string): string;
  node(nodeId: string): string;
  reaped(nodeId: string): string;
}

function shardKeys(tag: string): ShardKeys {
  return {
    byUser: `${tag}by-user`,
    events: `${tag}events`,
    epoch: `${tag}epoch`,
    user: (key) => `${tag}u:${key}`,
    node: (nodeId) => `${tag}node:${nodeId}`,
    reaped: (nodeId) => `${tag}reaped:${nodeId}`,
  };
}

/** Ends the user key in an index member; `\0\1` stands for a NUL inside the user id, so `\0\0` never appears in a user key. */
const USER_END = '\0\0';

/**
 * A user id as it leads its sessions' index members: every NUL written as NUL + \x01. A user key
 * then never holds `\0\0` nor ends in NUL, so `<user key>\0\0` begins exactly one user's members
 * whatever the id holds, and byte order of keys is byte order of ids (`\0\0` < `\0\1`).
 */
export function userKey(userId: string): string {
  return userId.includes('\0') ? userId.replaceAll('\0', '\0\x01') : userId;
}

/** The index member of one session (the by-user ZSET and node SETs hold these). */
export function indexMember(userId: string, sessionId: string): string {
  return `${userKey(userId)}${USER_END}${sessionId}`;
}

/** The user key and session id an index member is made of; undefined for a string that is not one (written by hand). */
export function splitMember(member: string): { userKey: string; sessionId: string } | undefined {
  const end = member.indexOf(USER_END);
  if (end < 0) return undefined;
  return { userKey: member.slice(0, end), sessionId: member.slice(end + USER_END.length) };
}

/** The user id a user key stands for. */
export function userIdOf(key: string): string {
  return key.includes('\0') ? key.replaceAll('\0\x01', '\0') : key;
}
