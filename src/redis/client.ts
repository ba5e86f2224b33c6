import type { Cluster, Redis } from 'ioredis';

/** A standalone or cluster ioredis client: every Redis user in pushgate works with either. */
export type RedisClient = Redis | Cluster;

/** A script reply element as ioredis hands it over (RESP arrays become JS arrays, nil becomes null). */
export type Reply = string | number | null | Reply[];
