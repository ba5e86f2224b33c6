import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** The Socket.IO edge: what clients may declare and send, who may connect cross-site, liveness. */
export interface EdgeConfig {
  readonly clientTypes: readonly string[];
  /** Application event that refreshes a session's last_seen_at; undefined: off. */
  readonly heartbeatEvent: string | undefined;
  /**
   * Browser origins (PUSHGATE_ALLOWED_ORIGINS) allowed to open a socket, over websocket or
   * long-polling alike; `*` allows any. Empty: the same site only, or any origin in dev mode.
   * Requests without an Origin header (native apps, backends) are not affected.
   */
  readonly corsOrigins: readonly string[];
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
}

export const EDGE_SETTINGS = {
  clientTypes: {
    flag: '--client-types <list>',
    env: 'PUSHGATE_CLIENT_TYPES',
    fallback: 'app,pc,web',
    help: 'comma-separated client types clients may declare',
  },
  heartbeatEvent: {
    flag: '--heartbeat-event <name>',
    env: 'PUSHGATE_HEARTBEAT_EVENT',
    help: 'application heartbeat event that refreshes last_seen_at (off when unset)',
  },
  corsOrigins: {
    flag: '--allowed-origins <list>',
    env: 'PUSHGATE_ALLOWED_ORIGINS',
    aliasEnv: 'PUSHGATE_CORS_ORIGINS',
    fallback: 'none: same site only (any origin in dev mode)',
    help: 'comma-separated browser origins (https://app.example.com) that may open sockets (websocket and polling), or *',
  },
  pingIntervalMs: { flag: '--ping-interval-ms <ms>', env: 'PUSHGATE_PING_INTERVAL_MS', fallback: '25000', help: 'Socket.IO ping interval' },
  pingTimeoutMs: {
    flag: '--ping-timeout-ms <ms>',
    env: 'PUSHGATE_PING_TIMEOUT_MS',
    fallback: '20000',
    help: 'Socket.IO pong wait before a connection counts as dead',
  },
} as const satisfies Record<string, Spec>;

export type EdgeKey = keyof typeof EDGE_SETTINGS;

const CLIENT_TYPE = /^[a-z0-9_-]{1,32}$/;
const EVENT_NAME = /^[\x21-\x7e]{1,128}$/;

export function parseEdge(settings: SettingsReader<EdgeKey>): EdgeConfig {
  const { raw, int, describe } = settings;
  const clientTypes = (raw('clientTypes') ?? 'app,pc,web')
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  const badType = clientTypes.find((t) => !CLIENT_TYPE.test(t));
  if (clientTypes.length === 0 || badType !== undefined) {
    throw new ConfigError(
      `${describe('clientTypes')} must list client types of a-z 0-9 _ - (e.g. "app,pc,web"), got "${raw('clientTypes')}"`,
    );
  }

  const heartbeatEvent = raw('heartbeatEvent');
  if (heartbeatEvent !== undefined && !EVENT_NAME.test(heartbeatEvent)) {
    throw new ConfigError(`${describe('heartbeatEvent')} must be a printable event name without spaces, got "${heartbeatEvent}"`);
  }

  const corsOrigins = (raw('corsOrigins') ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  const badOrigin = corsOrigins.find((o) => o !== '*' && !isOrigin(o));
  if (badOrigin !== undefined) {
    throw new ConfigError(
      `${describe('corsOrigins')} must list origins like https://app.example.com (scheme, host, optional port) or *, got "${badOrigin}"`,
    );
  }

  return Object.freeze({
    clientTypes: Object.freeze(clientTypes),
    heartbeatEvent,
    corsOrigins: Object.freeze(corsOrigins),
    pingIntervalMs: int('pingIntervalMs', 100, 600_000),
    pingTimeoutMs: int('pingTimeoutMs', 100, 600_000),
  });
}

/** True for exactly what a browser sends as Origin: http(s), host, optional port, nothing else. */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}
