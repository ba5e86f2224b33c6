import type { SettingsReader, Spec } from './settings.js';

/** How much the gRPC API lets one caller, one stream and one request take. */
export interface ApiLimitsConfig {
  /** Calls per second and burst per caller, per scope; 0 turns that limit off. */
  readonly rate: Readonly<Record<'push' | 'read' | 'admin', { readonly perSecond: number; readonly burst: number }>>;
  /** Open WatchPresence streams, on this node and per caller. */
  readonly maxWatchStreams: number;
  readonly maxWatchStreamsPerCaller: number;
  /** `user_ids` a WatchPresence request may name. */
  readonly maxWatchUserIds: number;
  /** Encoded bytes of presence events a reader may leave unread, beside the event count bound. */
  readonly presenceBufferBytes: number;
  /** HTTP/2 streams one connection may hold open at once. */
  readonly maxConcurrentStreams: number;
  /** Server pings an idle connection this often, and drops it when a ping goes unanswered this long. */
  readonly keepaliveMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Largest request message the server accepts. */
  readonly maxReceiveBytes: number;
  /** Deadline given to unary calls that arrive without one (or with a longer one). */
  readonly maxCallMs: number;
  /** Deepest nesting of a pushed `data` value. */
  readonly maxDataDepth: number;
  /** Sessions in one ListSessions page (and the page size when a request names none). */
  readonly maxListPageSize: number;
  /** `user_ids` one PushToUsers request may name. */
  readonly maxBatchUsers: number;
}

export const API_LIMIT_SETTINGS = {
  ratePushPerSecond: {
    flag: '--rate-push-per-second <n>',
    env: 'PUSHGATE_RATE_PUSH_PER_SECOND',
    fallback: '1000',
    help: 'push-scope calls per second per caller (0: no limit)',
  },
  ratePushBurst: {
    flag: '--rate-push-burst <n>',
    env: 'PUSHGATE_RATE_PUSH_BURST',
    fallback: '2000',
    help: 'push-scope calls a caller may make at once',
  },
  rateReadPerSecond: {
    flag: '--rate-read-per-second <n>',
    env: 'PUSHGATE_RATE_READ_PER_SECOND',
    fallback: '100',
    help: 'read-scope calls per second per caller (0: no limit)',
  },
  rateReadBurst: {
    flag: '--rate-read-burst <n>',
    env: 'PUSHGATE_RATE_READ_BURST',
    fallback: '200',
    help: 'read-scope calls a caller may make at once',
  },
  rateAdminPerSecond: {
    flag: '--rate-admin-per-second <n>',
    env: 'PUSHGATE_RATE_ADMIN_PER_SECOND',
    fallback: '20',
    help: 'admin-scope calls per second per caller (0: no limit)',
  },
  rateAdminBurst: {
    flag: '--rate-admin-burst <n>',
    env: 'PUSHGATE_RATE_ADMIN_BURST',
    fallback: '40',
    help: 'admin-scope calls a caller may make at once',
  },
  maxWatchStreams: {
    flag: '--max-watch-streams <n>',
    env: 'PUSHGATE_MAX_WATCH_STREAMS',
    fallback: '1000',
    help: 'open WatchPresence streams on this node',
  },
  maxWatchStreamsPerCaller: {
    flag: '--max-watch-streams-per-caller <n>',
    env: 'PUSHGATE_MAX_WATCH_STREAMS_PER_CALLER',
    fallback: '100',
    help: 'open WatchPresence streams per caller',
  },
  maxWatchUserIds: {
    flag: '--max-watch-user-ids <n>',
    env: 'PUSHGATE_MAX_WATCH_USER_IDS',
    fallback: '10000',
    help: 'user_ids one WatchPresence request may name',
  },
  presenceBufferBytes: {
    flag: '--presence-buffer-bytes <n>',
    env: 'PUSHGATE_PRESENCE_BUFFER_BYTES',
    fallback: '4194304',
    help: 'encoded bytes of events a WatchPresence reader may leave unread',
  },
  maxConcurrentStreams: {
    flag: '--grpc-max-concurrent-streams <n>',
    env: 'PUSHGATE_GRPC_MAX_CONCURRENT_STREAMS',
    fallback: '1000',
    help: 'calls one gRPC connection may have open at once',
  },
  keepaliveMs: {
    flag: '--grpc-keepalive-ms <ms>',
    env: 'PUSHGATE_GRPC_KEEPALIVE_MS',
    fallback: '60000',
    help: 'server pings each gRPC connection this often',
  },
  keepaliveTimeoutMs: {
    flag: '--grpc-keepalive-timeout-ms <ms>',
    env: 'PUSHGATE_GRPC_KEEPALIVE_TIMEOUT_MS',
    fallback: '20000',
    help: 'a connection whose ping goes unanswered this long is dropped',
  },
  maxReceiveBytes: {
    flag: '--grpc-max-receive-bytes <n>',
    env: 'PUSHGATE_GRPC_MAX_RECEIVE_BYTES',
    fallback: '4194304',
    help: 'largest gRPC request message',
  },
  maxCallMs: {
    flag: '--grpc-max-call-ms <ms>',
    env: 'PUSHGATE_GRPC_MAX_CALL_MS',
    fallback: '120000',
    help: 'deadline of unary calls that come without one (or with a longer one)',
  },
  maxDataDepth: {
    flag: '--max-data-depth <n>',
    env: 'PUSHGATE_MAX_DATA_DEPTH',
    fallback: '32',
    help: 'deepest nesting of a pushed data value',
  },
  maxListPageSize: {
    flag: '--max-list-page-size <n>',
    env: 'PUSHGATE_MAX_LIST_PAGE_SIZE',
    fallback: '1000',
    help: 'sessions in one ListSessions page (also the size when a request sets no page_size)',
  },
  maxBatchUsers: {
    flag: '--max-batch-users <n>',
    env: 'PUSHGATE_MAX_BATCH_USERS',
    fallback: '10000',
    help: 'user_ids one PushToUsers request may name',
  },
} as const satisfies Record<string, Spec>;

export type ApiLimitKey = keyof typeof API_LIMIT_SETTINGS;

export function parseApiLimits(settings: SettingsReader<ApiLimitKey>): ApiLimitsConfig {
  const { int } = settings;
  return Object.freeze({
    rate: Object.freeze({
      push: Object.freeze({ perSecond: int('ratePushPerSecond', 0, 1_000_000), burst: int('ratePushBurst', 1, 1_000_000) }),
      read: Object.freeze({ perSecond: int('rateReadPerSecond', 0, 1_000_000), burst: int('rateReadBurst', 1, 1_000_000) }),
      admin: Object.freeze({ perSecond: int('rateAdminPerSecond', 0, 1_000_000), burst: int('rateAdminBurst', 1, 1_000_000) }),
    }),
    maxWatchStreams: int('maxWatchStreams', 1, 1_000_000),
    maxWatchStreamsPerCaller: int('maxWatchStreamsPerCaller', 1, 1_000_000),
    maxWatchUserIds: int('maxWatchUserIds', 1, 1_000_000),
    presenceBufferBytes: int('presenceBufferBytes', 65_536, 1 << 30),
    maxConcurrentStreams: int('maxConcurrentStreams', 1, 1_000_000),
    keepaliveMs: int('keepaliveMs', 1000, 86_400_000),
    keepaliveTimeoutMs: int('keepaliveTimeoutMs', 1000, 600_000),
    maxReceiveBytes: int('maxReceiveBytes', 65_536, 1 << 30),
    maxCallMs: int('maxCallMs', 1000, 86_400_000),
    maxDataDepth: int('maxDataDepth', 1, 100),
    maxListPageSize: int('maxListPageSize', 1, 100_000),
    maxBatchUsers: int('maxBatchUsers', 1, 1_000_000),
  });
}
