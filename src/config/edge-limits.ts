import { isIP } from 'node:net';
import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

export type SessionLimitPolicy = 'refuse' | 'evict_oldest';

/** What one client, one user and one client address may take from the Socket.IO edge. */
export interface EdgeLimitsConfig {
  /** Bytes already queued for a connection above which a push is FAILED (`slow_consumer`) and the socket closed. */
  readonly maxClientBufferBytes: number;
  /** Largest ack, as its estimated encoded size in the gRPC reply. */
  readonly maxAckBytes: number;
  /** Deepest nesting of objects and arrays in an ack. */
  readonly maxAckDepth: number;
  /** Sessions one user may hold across the cluster; 0: no limit. */
  readonly maxSessionsPerUser: number;
  readonly sessionLimitPolicy: SessionLimitPolicy;
  /** Open connections per client address (per node); 0: no limit. */
  readonly maxConnectionsPerIp: number;
  /** Handshakes per second per client address (per node); 0: no limit. */
  readonly maxHandshakesPerIpPerS: number;
  /** Proxies whose X-Forwarded-For is believed (IPs and CIDRs); empty: the peer address is the client. */
  readonly trustedProxies: readonly string[];
  /** A connection that has not authenticated this long after opening is dropped. */
  readonly handshakeTimeoutMs: number;
}

export const EDGE_LIMIT_SETTINGS = {
  maxClientBufferBytes: {
    flag: '--max-client-buffer-bytes <n>',
    env: 'PUSHGATE_MAX_CLIENT_BUFFER_BYTES',
    fallback: '4194304',
    help: 'bytes queued for a client that does not read, above which its pushes fail (slow_consumer) and its socket is closed',
  },
  maxAckBytes: {
    flag: '--max-ack-bytes <n>',
    env: 'PUSHGATE_MAX_ACK_BYTES',
    fallback: '16384',
    help: 'largest ack a client may send (encoded size); a larger one fails that delivery (ack_too_large)',
  },
  maxAckDepth: {
    flag: '--max-ack-depth <n>',
    env: 'PUSHGATE_MAX_ACK_DEPTH',
    fallback: '32',
    help: 'deepest nesting of objects and arrays in an ack (at most 32); a deeper one fails that delivery (ack_too_deep)',
  },
  maxSessionsPerUser: {
    flag: '--max-sessions-per-user <n>',
    env: 'PUSHGATE_MAX_SESSIONS_PER_USER',
    fallback: '64',
    help: 'sessions one user may hold across the cluster; 0 for no limit',
  },
  sessionLimitPolicy: {
    flag: '--session-limit-policy <policy>',
    env: 'PUSHGATE_SESSION_LIMIT_POLICY',
    fallback: 'refuse',
    help: 'at the per-user limit: refuse the new session (too_many_sessions) or evict_oldest',
  },
  maxConnectionsPerIp: {
    flag: '--max-connections-per-ip <n>',
    env: 'PUSHGATE_MAX_CONNECTIONS_PER_IP',
    fallback: '0 (off: behind a load balancer every client shares one address)',
    help: 'open connections per client address on this node',
  },
  maxHandshakesPerIpPerS: {
    flag: '--max-handshakes-per-ip-per-s <n>',
    env: 'PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S',
    fallback: '0 (off)',
    help: 'handshakes per second per client address on this node (bursts of as many)',
  },
  trustedProxies: {
    flag: '--trusted-proxies <list>',
    env: 'PUSHGATE_TRUSTED_PROXIES',
    fallback: 'none',
    help: 'comma-separated proxy IPs/CIDRs whose X-Forwarded-For names the client address',
  },
  handshakeTimeoutMs: {
    flag: '--handshake-timeout-ms <ms>',
    env: 'PUSHGATE_HANDSHAKE_TIMEOUT_MS',
    fallback: '10000',
    help: 'a connection that has not authenticated this long after opening is dropped',
  },
} as const satisfies Record<string, Spec>;

export type EdgeLimitKey = keyof typeof EDGE_LIMIT_SETTINGS;

/**
 * Each object level of an ack costs three protobuf message levels in the reply (Value, Struct, map
 * entry) on top of the reply's own three: 3 + 3 × 32 = 99 stays under the recursion limit of 100
 * that the C++, Java and Python protobuf parsers enforce, so no caller fails to decode a reply.
 */
const PROTOBUF_SAFE_DEPTH = 32;

export function parseEdgeLimits(settings: SettingsReader<EdgeLimitKey>): EdgeLimitsConfig {
  const { raw, int, describe } = settings;
  const policy = raw('sessionLimitPolicy') ?? 'refuse';
  if (policy !== 'refuse' && policy !== 'evict_oldest') {
    throw new ConfigError(`${describe('sessionLimitPolicy')} must be refuse or evict_oldest, got "${policy}"`);
  }
  const trustedProxies = (raw('trustedProxies') ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const badProxy = trustedProxies.find((p) => !isAddressOrCidr(p));
  if (badProxy !== undefined) {
    throw new ConfigError(
      `${describe('trustedProxies')} must list IP addresses, CIDRs (10.0.0.0/8, ::1) or loopback, linklocal, uniquelocal, got "${badProxy}"`,
    );
  }
  return Object.freeze({
    maxClientBufferBytes: int('maxClientBufferBytes', 1024, 1 << 30),
    maxAckBytes: int('maxAckBytes', 16, 64 * 1024 * 1024),
    maxAckDepth: int('maxAckDepth', 1, PROTOBUF_SAFE_DEPTH),
    maxSessionsPerUser: int('maxSessionsPerUser', 0, 1_000_000),
    sessionLimitPolicy: policy,
    maxConnectionsPerIp: intOrOff(settings, 'maxConnectionsPerIp', 1_000_000),
    maxHandshakesPerIpPerS: intOrOff(settings, 'maxHandshakesPerIpPerS', 1_000_000),
    trustedProxies: Object.freeze(trustedProxies),
    handshakeTimeoutMs: int('handshakeTimeoutMs', 100, 600_000),
  });
}

/** A whole number, or 0 (off) when unset: these settings' --help fallback is prose, not a number. */
function intOrOff(settings: SettingsReader<EdgeLimitKey>, key: EdgeLimitKey, max: number): number {
  const value = settings.raw(key) ?? '0';
  if (!/^\d+$/.test(value) || Number(value) > max) {
    throw new ConfigError(`${settings.describe(key)} must be a whole number from 0 (off) to ${max}, got "${value}"`);
  }
  return Number(value);
}

/** proxy-addr's names for common ranges. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(value: string): boolean {
  if (PROXY_RANGE_NAMES.has(value)) return true;
  const [address, prefix, extra] = value.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}
