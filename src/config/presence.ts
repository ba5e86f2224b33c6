import type { SettingsReader, Spec } from './settings.js';

/** WatchPresence streams: how far a reader may lag, and what is kept for resuming. */
export interface PresenceConfig {
  /** Events a WatchPresence reader may fall behind before its stream ends. */
  readonly bufferSize: number;
  /** Presence events kept for resuming streams: at most this many (per registry shard)… */
  readonly retention: number;
  /** …and none older than this. */
  readonly retentionMs: number;
}

/** Keys keep their `presence` prefix: they share one namespace with every other table. */
export const PRESENCE_SETTINGS = {
  presenceBufferSize: {
    flag: '--presence-buffer <events>',
    env: 'PUSHGATE_PRESENCE_BUFFER',
    fallback: '10000',
    help: 'events a WatchPresence reader may fall behind before its stream ends',
  },
  presenceRetention: {
    flag: '--presence-retention <events>',
    env: 'PUSHGATE_PRESENCE_RETENTION',
    fallback: '10000',
    help: 'presence events kept for resume_after (per shard in cluster mode)',
  },
  presenceRetentionMs: {
    flag: '--presence-retention-ms <ms>',
    env: 'PUSHGATE_PRESENCE_RETENTION_MS',
    fallback: '600000',
    help: 'oldest presence event kept for resume_after',
  },
} as const satisfies Record<string, Spec>;

export type PresenceKey = keyof typeof PRESENCE_SETTINGS;

export function parsePresence(settings: SettingsReader<PresenceKey>): PresenceConfig {
  const { int } = settings;
  return Object.freeze({
    bufferSize: int('presenceBufferSize', 1, 1_000_000),
    retention: int('presenceRetention', 1, 10_000_000),
    retentionMs: int('presenceRetentionMs', 1000, 7 * 24 * 3_600_000),
  });
}
