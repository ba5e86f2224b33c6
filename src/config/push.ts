import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** Limits of a push: how long it waits for acks and how much it may carry. */
export interface PushConfig {
  /** Wait for each session's ack when the caller names none. */
  readonly ackTimeoutMs: number;
  /** Largest ack_timeout_ms a caller may ask for; ackTimeoutMs is never above it. */
  readonly maxAckTimeoutMs: number;
  /** Largest encoded `data` of a push. */
  readonly maxPayloadBytes: number;
}

export const PUSH_SETTINGS = {
  ackTimeoutMs: {
    flag: '--ack-timeout-ms <ms>',
    env: 'PUSHGATE_ACK_TIMEOUT_MS',
    fallback: '5000',
    help: 'default wait for each session’s ack',
  },
  maxAckTimeoutMs: {
    flag: '--max-ack-timeout-ms <ms>',
    env: 'PUSHGATE_MAX_ACK_TIMEOUT_MS',
    fallback: '60000',
    help: 'largest ack_timeout_ms a caller may ask for',
  },
  maxPayloadBytes: {
    flag: '--max-payload-bytes <n>',
    env: 'PUSHGATE_MAX_PAYLOAD_BYTES',
    fallback: '262144',
    help: 'largest encoded `data` of a push',
  },
} as const satisfies Record<string, Spec>;

export type PushKey = keyof typeof PUSH_SETTINGS;

export function parsePush(settings: SettingsReader<PushKey>): PushConfig {
  const { int, describe } = settings;
  const ackTimeoutMs = int('ackTimeoutMs', 1, 3_600_000);
  const maxAckTimeoutMs = int('maxAckTimeoutMs', 1, 3_600_000);
  if (ackTimeoutMs > maxAckTimeoutMs) {
    throw new ConfigError(`${describe('ackTimeoutMs')} (${ackTimeoutMs}) exceeds ${describe('maxAckTimeoutMs')} (${maxAckTimeoutMs})`);
  }
  return Object.freeze({
    ackTimeoutMs,
    maxAckTimeoutMs,
    maxPayloadBytes: int('maxPayloadBytes', 1, 64 * 1024 * 1024),
  });
}
