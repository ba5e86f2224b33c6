/**
 * The registry's Redis keys, built in one place (cluster membership and the node bus build theirs
 * in src/cluster/cluster-keys.ts). Layout (P = key prefix, S = shard number; README "Redis key
 * layout" describes each key):
 *
 *   P{sS}:sessions         HASH   session id → session record JSON (without last_seen_at)
 *   P{sS}:seen             HASH   session id → last_seen_at, epoch ms (written in batches)
 *   P{sS}:users            HASH   user id → JSON array of the user's session ids
 *   P{sS}:node:<node id>   SET    session ids held by that node (what a reaper removes)
 *   P{sS}:reaped:<node id> STRING set when a node's sessions were reaped; tells a node that comes
 *                                 back whether its sessions' departure was announced (TTL 1 day)
 *   P{sS}:events           STREAM presence events, trimmed by count and age
 *   P{sS}:epoch            STRING identity of this shard's event stream; a new one after Redis lost
 *                                 its data, so old cursors are refused instead of misread
 *
 * The `{…}` hash tag puts a shard's keys in one Redis Cluster slot, so each Lua script touches one
 * slot. A user always maps to the same shard, so one user's keys share a slot. Every script names
 * all the keys it touches up front (no key is built inside a script): per-user data lives in
 * fields of shard-wide hashes, so reaping a node needs no knowledge of its users beforehand.
 */
export class RegistryKeys {
  /** Built once: every push looks up its user's shard keys. */
  private readonly byShard: readonly ShardKeys[];

  constructor(
    readonly prefix: string,
    readonly shards: number,
  ) {
    this.byShard = Array.from({ length: shards }, (_, shard) => shardKeys(`${prefix}{s${shard}}:`));
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
}

export interface ShardKeys {
  readonly sessions: string;
  readonly seen: string;
  readonly events: string;
  readonly epoch: string;
  readonly users: string;
  node(nodeId: string): string;
  reaped(nodeId: string): string;
}

function shardKeys(tag: string): ShardKeys {
  return {
    sessions: `${tag}sessions`,
    seen: `${tag}seen`,
    events: `${tag}events`,
    epoch: `${tag}epoch`,
    users: `${tag}users`,
    node: (nodeId) => `${tag}node:${nodeId}`,
    reaped: (nodeId) => `${tag}reaped:${nodeId}`,
  };
}
