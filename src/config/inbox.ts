import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/**
 * Delivery guarantees: the offline inbox (how long stored pushes are kept, how many per user, what
 * a full inbox does), receipts and idempotency.
 */
export interface InboxConfig {
  /** Kept this long unacked when the push gives no ttl_seconds. */
  readonly defaultTtlS: number;
  /** The longest ttl_seconds a push may ask for. */
  readonly maxTtlS: number;
  /** Most messages one user's inbox holds. */
  readonly maxMessagesPerUser: number;
  readonly whenFull: 'drop_oldest' | 'refuse_new';
  /** Memory mode only: most messages the node's inbox holds over all users (its memory bound). */
  readonly maxTotalMessages: number;
  /** Most stored messages replayed to one session per read; a session reads until none are left. */
  readonly replayBatch: number;
  /** A push's result is remembered by its caller's message_id this long; 0: not at all. */
  readonly idempotencyWindowS: number;
  /** Memory mode: most message ids remembered; the oldest results are forgotten early past it. */
  readonly idempotencyMaxKeys: number;
  /** A message's receipt is kept this long after its push (and after it leaves the inbox). */
  readonly receiptRetentionS: number;
}

const DAY_S = 86_400;

export const INBOX_SETTINGS = {
  inboxTtlS: {
    flag: '--inbox-ttl-s <seconds>',
    env: 'PUSHGATE_INBOX_TTL_S',
    fallback: String(DAY_S),
    help: 'how long a stored push is kept unacked when the push gives no ttl_seconds',
  },
  inboxMaxTtlS: {
    flag: '--inbox-max-ttl-s <seconds>',
    env: 'PUSHGATE_INBOX_MAX_TTL_S',
    fallback: String(7 * DAY_S),
    help: 'the longest ttl_seconds a push may ask for',
  },
  inboxMaxMessages: {
    flag: '--inbox-max-messages <count>',
    env: 'PUSHGATE_INBOX_MAX_MESSAGES',
    fallback: '100',
    help: "most messages one user's offline inbox holds",
  },
  inboxFullPolicy: {
    flag: '--inbox-full-policy <policy>',
    env: 'PUSHGATE_INBOX_FULL_POLICY',
    fallback: 'drop_oldest',
    help: 'a full inbox: drop_oldest (make room, counted and reported) or refuse_new (RESOURCE_EXHAUSTED)',
  },
  inboxMaxTotalMessages: {
    flag: '--inbox-max-total-messages <count>',
    env: 'PUSHGATE_INBOX_MAX_TOTAL_MESSAGES',
    fallback: '100000',
    help: "memory mode: most stored messages over all users (the inbox's memory bound; lost on restart)",
  },
  inboxReplayBatch: {
    flag: '--inbox-replay-batch <count>',
    env: 'PUSHGATE_INBOX_REPLAY_BATCH',
    fallback: '100',
    help: 'stored messages read per replay step for a connecting session',
  },
  idempotencyWindowS: {
    flag: '--idempotency-window-s <seconds>',
    env: 'PUSHGATE_IDEMPOTENCY_WINDOW_S',
    fallback: '300',
    help: "a repeated PushToUser message_id within this window returns the first call's result instead of delivering again; 0 turns it off",
  },
  idempotencyMaxKeys: {
    flag: '--idempotency-max-keys <count>',
    env: 'PUSHGATE_IDEMPOTENCY_MAX_KEYS',
    fallback: '100000',
    help: 'memory mode: most message ids a node remembers for idempotency; past it the oldest are forgotten before their window ends',
  },
  receiptRetentionS: {
    flag: '--receipt-retention-s <seconds>',
    env: 'PUSHGATE_RECEIPT_RETENTION_S',
    fallback: '3600',
    help: 'how long GetMessage keeps a receipt after the push (or after the message left the inbox)',
  },
} as const satisfies Record<string, Spec>;

export type InboxKey = keyof typeof INBOX_SETTINGS;

export function parseInbox(settings: SettingsReader<InboxKey>): InboxConfig {
  const { int, raw, describe } = settings;
  const maxTtlS = int('inboxMaxTtlS', 1, 365 * DAY_S);
  const defaultTtlS = int('inboxTtlS', 1, 365 * DAY_S);
  if (defaultTtlS > maxTtlS) {
    throw new ConfigError(`${describe('inboxTtlS')} (${defaultTtlS}) must not exceed ${describe('inboxMaxTtlS')} (${maxTtlS})`);
  }
  const whenFull = raw('inboxFullPolicy') ?? INBOX_SETTINGS.inboxFullPolicy.fallback;
  if (whenFull !== 'drop_oldest' && whenFull !== 'refuse_new') {
    throw new ConfigError(`${describe('inboxFullPolicy')} must be drop_oldest or refuse_new, got "${whenFull}"`);
  }
  return Object.freeze({
    defaultTtlS,
    maxTtlS,
    maxMessagesPerUser: int('inboxMaxMessages', 1, 100_000),
    whenFull,
    maxTotalMessages: int('inboxMaxTotalMessages', 1, 100_000_000),
    replayBatch: int('inboxReplayBatch', 1, 10_000),
    idempotencyWindowS: int('idempotencyWindowS', 0, 7 * DAY_S),
    idempotencyMaxKeys: int('idempotencyMaxKeys', 1, 100_000_000),
    receiptRetentionS: int('receiptRetentionS', 1, 30 * DAY_S),
  });
}
