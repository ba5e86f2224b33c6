/**
 * The inbox's Redis keys, built in one place. Every key of one user carries the hash tag of the
 * user's registry shard (T = `shardTagOf(userId)`, e.g. `P{s3}:`; U = user key, see userKey), so a
 * script touching a user's inbox touches one Redis Cluster slot, the slot of the user's sessions:
 *
 *   T ib:U     HASH  the user's messages, fields per message id:
 *                      m:<id>  record JSON (everything that never changes, but seq); opaque to Lua
 *                      n:<id>  attempts (deliveries made so far)
 *                      a:<id>  client types that acked it, "\n"-wrapped (each_client_type)
 *                      t:<id>  the client-type filter, "\n"-wrapped; absent: every type
 *                      q:<id>  the types that must ack it, "\n"-wrapped; present only for each_client_type
 *                    and `seq` (the last seq given), `x` (the latest expiry stored, epoch ms)
 *   T ibo:U    ZSET  the user's message ids by seq: order and pages
 *   T ibx:U    ZSET  the user's message ids by expiresAtMs: what is live, and the cap's count
 *   T ib-exp   ZSET  every message of the shard, member `<user key>\0\0<id>`, by expiresAtMs: sweeps
 *
 * The three keys of a user expire on their own a grace period after the user's latest expiry, so an
 * inbox nobody sweeps or reads still leaves Redis; the shard's `ib-exp` is shared and emptied by
 * sweeps. No script decodes JSON: what Lua needs (filter, required and acked types, expiry) is in
 * plain fields and sorted-set scores. Client types never hold "\n" (config allows a-z 0-9 _ -).
 */
export class InboxKeys {
  /** `shardTagOf(userId)`: the key prefix and hash tag of the user's registry shard, e.g. `P{s3}:`. */
  constructor(private readonly shardTagOf: (userId: string) => string) {}

  user(userId: string): UserInboxKeys {
    return userInboxKeys(this.shardTagOf(userId), userKey(userId));
  }
}

/** Every key one user's inbox scripts touch, in the order the scripts take them (see lua/_common.lua). */
export interface UserInboxKeys {
  /** The user id as it appears in keys and sweep members (see userKey). */
  readonly userKey: string;
  readonly hash: string;
  readonly order: string;
  readonly expiry: string;
  /** The shard's sweep index. */
  readonly due: string;
}

export function userInboxKeys(tag: string, key: string): UserInboxKeys {
  return { userKey: key, hash: `${tag}ib:${key}`, order: `${tag}ibo:${key}`, expiry: `${tag}ibx:${key}`, due: dueKey(tag) };
}

/** The sweep index of the shard with this tag. */
export function dueKey(tag: string): string {
  return `${tag}ib-exp`;
}

/** Ends the user key in a sweep member; `\0\1` stands for a NUL inside the user id, so `\0\0` never appears in a user key. */
const USER_END = '\0\0';

/**
 * A user id as it appears in keys and sweep members: every NUL written as NUL + \x01, so a user
 * key never holds `\0\0` and `<user key>\0\0<id>` splits at its first `\0\0` whatever the ids hold.
 */
export function userKey(userId: string): string {
  return userId.includes('\0') ? userId.replaceAll('\0', '\0\x01') : userId;
}

/** The user key and message id a sweep member is made of; undefined for a string that is not one (written by hand). */
export function splitDueMember(member: string): { userKey: string; messageId: string } | undefined {
  const end = member.indexOf(USER_END);
  if (end < 0) return undefined;
  return { userKey: member.slice(0, end), messageId: member.slice(end + USER_END.length) };
}
