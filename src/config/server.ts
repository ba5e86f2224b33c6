import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { ConfigError } from '../errors.js';
import type { SettingsReader, Spec } from './settings.js';

/** The node itself: where both servers listen, who it is, how it logs and stops. */
export interface ServerConfig {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Bind address of the Socket.IO/HTTP server (the gRPC API has its own, ApiConfig.host). */
  readonly host: string;
  /** This node's id in session records. */
  readonly nodeId: string;
  /** UNSAFE development mode: a token endpoint, a generated secret; loopback hosts only (checked in config.ts). */
  readonly dev: boolean;
  /** Serve the demo page at `/`: always in development mode, otherwise only when enabled. */
  readonly demoPage: boolean;
  /** Serve the operator dashboard at /dashboard (off unless enabled, in development mode too). */
  readonly dashboard: boolean;
  readonly logLevel: string;
  /** How long shutdown waits for in-flight calls. */
  readonly shutdownGraceMs: number;
}

export const SERVER_SETTINGS = {
  grpcPort: { flag: '--grpc-port <port>', env: 'PUSHGATE_GRPC_PORT', fallback: '50051', help: 'gRPC API port; 0 picks a free port' },
  httpPort: {
    flag: '--http-port <port>',
    env: 'PUSHGATE_HTTP_PORT',
    fallback: '3000',
    help: 'Socket.IO and HTTP port; 0 picks a free port',
  },
  host: {
    flag: '--host <address>',
    env: 'PUSHGATE_HOST',
    fallback: '0.0.0.0 (127.0.0.1 in dev mode)',
    help: 'bind address of the Socket.IO/HTTP server (the gRPC API has PUSHGATE_GRPC_HOST)',
  },
  nodeId: { flag: '--node-id <id>', env: 'PUSHGATE_NODE_ID', fallback: '<hostname>-<random>', help: 'this node’s id in session records' },
  dev: {
    flag: '--dev',
    env: 'PUSHGATE_DEV',
    boolean: true,
    fallback: 'off',
    help: 'UNSAFE: development token endpoint and a generated secret; loopback hosts only',
  },
  demoPage: {
    flag: '--demo-page',
    env: 'PUSHGATE_DEMO_PAGE',
    boolean: true,
    fallback: 'off (on in dev mode)',
    help: 'serve the demo page at / outside development mode',
  },
  dashboard: {
    flag: '--dashboard',
    env: 'PUSHGATE_DASHBOARD',
    boolean: true,
    fallback: 'off',
    help: 'serve the operator dashboard at /dashboard (needs an admin API key when API keys are set)',
  },
  shutdownGraceMs: {
    flag: '--shutdown-grace-ms <ms>',
    env: 'PUSHGATE_SHUTDOWN_GRACE_MS',
    fallback: '10000',
    help: 'how long shutdown waits for in-flight calls',
  },
  logLevel: { flag: '--log-level <level>', env: 'LOG_LEVEL', fallback: 'info', help: 'fatal, error, warn, info, debug or trace' },
} as const satisfies Record<string, Spec>;

export type ServerKey = keyof typeof SERVER_SETTINGS;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export function parseServer(settings: SettingsReader<ServerKey>): ServerConfig {
  const { raw, int, bool, describe } = settings;
  const dev = bool('dev');
  const logLevel = (raw('logLevel') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) {
    throw new ConfigError(`${describe('logLevel')} must be one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`);
  }

  const nodeId = raw('nodeId') ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '') || 'node'}-${randomBytes(3).toString('hex')}`;
  if (!NODE_ID.test(nodeId)) {
    throw new ConfigError(`${describe('nodeId')} must be 1-64 characters of A-Z a-z 0-9 . _ -, got "${nodeId}"`);
  }

  return Object.freeze({
    grpcPort: int('grpcPort', 0, 65535),
    httpPort: int('httpPort', 0, 65535),
    // Development mode stays on loopback unless told otherwise: GET /dev/token mints a token for any user.
    host: raw('host') ?? (dev ? '127.0.0.1' : '0.0.0.0'),
    nodeId,
    dev,
    // Off in production by default: it advertises the node and its gRPC address to anyone who asks.
    demoPage: dev || bool('demoPage'),
    // Off even in development mode: it can push to and log out any user, so it is asked for by name.
    dashboard: bool('dashboard'),
    logLevel,
    shutdownGraceMs: int('shutdownGraceMs', 0, 600_000),
  });
}

/**
 * True for an address nothing off this machine can reach: 127.0.0.0/8 (also IPv4-mapped), ::1 and
 * the name localhost. Any other name counts as reachable: what it resolves to is not ours to know.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
