/**
 * Redis keys and channels of cluster membership and the node bus (the registry's own keys are
 * built in src/registry/redis-keys.ts). P = key prefix:
 *
 *   P{nodes}:leases    ZSET     node id → lease expiry (Redis server time, ms)
 *   P{nodes}:resync    SET      nodes a reaper found alive again: they sync at their next renewal
 *   Pbus:<node id>     channel  requests to that node, and replies to requests it made (sharded pub/sub)
 *
 * `{nodes}` keeps both membership keys in one Redis Cluster slot, so the lease scripts touch one slot.
 */
export class ClusterKeys {
  readonly leases: string;
  readonly resync: string;

  constructor(readonly prefix: string) {
    this.leases = `${prefix}{nodes}:leases`;
    this.resync = `${prefix}{nodes}:resync`;
  }

  busChannel(nodeId: string): string {
    return `${this.prefix}bus:${nodeId}`;
  }
}
