import type { AckResult, Inbox, InboxLimits, InboxPage, NewStoredMessage, StoredMessage, StoreResult } from '../domain/inbox.js';
import type { RedisClient, Reply } from '../redis/client.js';
import { callRedis } from '../redis/errors.js';
import { dueKey, type InboxKeys, splitDueMember, type UserInboxKeys, userInboxKeys } from './inbox-keys.js';
import { inboxFull, keptForm } from './inbox-messages.js';
import { readMessages, recordJson, wrapTypes } from './inbox-records.js';
import { defineInboxScripts, type InboxScripts } from './inbox-scripts.js';

/** How long a user's keys outlive their latest expiry by default: a sweep finds them well before. */
const DEFAULT_KEY_GRACE_MS = 24 * 60 * 60 * 1000;

export interface RedisInboxOptions {
  /** Client for commands (no offline queue, a command timeout). The inbox defines its scripts on it. */
  readonly client: RedisClient;
  readonly keys: InboxKeys;
  /** The tag of every registry shard (`P{s0}:`, `P{s1}:`…): `expire` sweeps each. */
  readonly shardTags: readonly string[];
  /** How long a user's keys stay after their latest expiry, so an inbox nobody sweeps still leaves Redis. */
  readonly keyGraceMs?: number;
}

const WHAT = 'offline inbox';

/**
 * The cluster-mode inbox: each user's messages in Redis, in the user's registry shard (key layout:
 * inbox-keys.ts), shared by every node. Each change is one Lua script on one user's keys (atomic,
 * one slot); `expire` reads each shard's sweep index with a plain command, then removes what it
 * found through a script that checks again, so nodes sweeping at once report each message once.
 */
export class RedisInbox implements Inbox {
  private readonly scripts: InboxScripts;
  private readonly keyGraceMs: number;
  /** The shard `expire` starts with: each call starts one further, so a busy shard cannot starve the others. */
  private nextShard = 0;

  constructor(private readonly options: RedisInboxOptions) {
    this.scripts = defineInboxScripts(options.client);
    this.keyGraceMs = options.keyGraceMs ?? DEFAULT_KEY_GRACE_MS;
  }

  async store(message: NewStoredMessage, limits: InboxLimits, nowMs: number): Promise<StoreResult> {
    const { fields, dataJson } = keptForm(message);
    const k = this.options.keys.user(message.userId);
    const reply = (await this.run('inboxStore', k, true, [
      message.messageId,
      k.userKey,
      recordJson(fields, dataJson),
      message.attempts,
      fields.clientTypes.length === 0 ? '' : wrapTypes(fields.clientTypes),
      fields.removal === 'each_client_type' ? wrapTypes(fields.requiredTypes) : '',
      fields.expiresAtMs,
      nowMs,
      limits.maxMessages,
      limits.whenFull,
      this.keyGraceMs,
    ])) as Reply[];
    if (reply[0] === 'full') throw inboxFull(message.userId, limits);
    if (reply[0] !== 'stored') return { stored: false, dropped: [] };
    return { stored: true, dropped: readMessages(reply[2] ?? []) };
  }

  async claimForReplay(userId: string, clientType: string, afterSeq: number, limit: number, nowMs: number): Promise<StoredMessage[]> {
    const k = this.options.keys.user(userId);
    return readMessages(await this.run('inboxClaim', k, false, [clientType, afterSeq, limit, nowMs]));
  }

  async ack(userId: string, messageId: string, clientType: string): Promise<AckResult> {
    const k = this.options.keys.user(userId);
    return (await this.run('inboxAck', k, true, [messageId, k.userKey, clientType])) as AckResult;
  }

  async list(userId: string, afterSeq: number, limit: number, nowMs: number): Promise<InboxPage> {
    const k = this.options.keys.user(userId);
    const [more, page] = (await this.run('inboxList', k, false, [afterSeq, limit, nowMs])) as [number, Reply];
    const messages = readMessages(page);
    return { messages, nextAfterSeq: more === 1 ? (messages.at(-1)?.seq ?? afterSeq) : undefined };
  }

  async remove(userId: string, messageIds: readonly string[] | 'all'): Promise<string[]> {
    if (messageIds !== 'all' && messageIds.length === 0) return [];
    const k = this.options.keys.user(userId);
    const which = messageIds === 'all' ? ['all'] : ['ids', ...messageIds];
    return ((await this.run('inboxRemove', k, true, [k.userKey, ...which])) as Buffer[] | string[]).map(String);
  }

  async expire(nowMs: number, limit: number): Promise<StoredMessage[]> {
    const { shardTags } = this.options;
    const expired: StoredMessage[] = [];
    const start = this.nextShard++ % Math.max(shardTags.length, 1);
    for (let i = 0; i < shardTags.length && expired.length < limit; i++) {
      expired.push(...(await this.expireShard(shardTags[(start + i) % shardTags.length]!, nowMs, limit - expired.length)));
    }
    return expired;
  }

  /** Does not close the client: whoever opened it closes it. */
  async close(): Promise<void> {}

  /** Up to `limit` due messages of one shard, one script call per user found, the users at once. */
  private async expireShard(tag: string, nowMs: number, limit: number): Promise<StoredMessage[]> {
    const { client } = this.options;
    const due = dueKey(tag);
    const members = (await callRedis(
      () => this.scripts.observed('inboxDue', () => client.call('ZRANGEBYSCORE', due, '-inf', nowMs, 'LIMIT', 0, limit)),
      WHAT,
    )) as string[];
    const byUser = new Map<string, string[]>();
    for (const member of members) {
      const parts = splitDueMember(member);
      // A member written by hand would sit at the front for ever: take it out.
      if (parts === undefined) await callRedis(() => client.call('ZREM', due, member), WHAT);
      else if (!byUser.get(parts.userKey)?.push(parts.messageId)) byUser.set(parts.userKey, [parts.messageId]);
    }
    const replies = await Promise.all(
      [...byUser].map(([key, ids]) => this.run('inboxExpire', userInboxKeys(tag, key), true, [key, nowMs, ...ids])),
    );
    return replies.flatMap(readMessages).sort((a, b) => a.expiresAtMs - b.expiresAtMs || a.seq - b.seq);
  }

  private run(name: Parameters<InboxScripts['run']>[0], k: UserInboxKeys, withDue: boolean, args: (string | number)[]): Promise<Reply> {
    const keys = withDue ? [k.hash, k.order, k.expiry, k.due] : [k.hash, k.order, k.expiry];
    return callRedis(() => this.scripts.run(name, keys, args), WHAT);
  }
}
