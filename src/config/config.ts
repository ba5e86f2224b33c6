import { Command, CommanderError } from 'commander';
import { ConfigError } from '../errors.js';
import { API_SETTINGS, type ApiConfig, parseApi } from './api.js';
import { API_LIMIT_SETTINGS, type ApiLimitsConfig, parseApiLimits } from './api-limits.js';
import { AUTH_SETTINGS, type AuthConfig, parseAuth } from './auth.js';
import { CLUSTER_SETTINGS, parseCluster, type RedisConfig } from './cluster.js';
import { EDGE_SETTINGS, type EdgeConfig, parseEdge } from './edge.js';
import { EDGE_LIMIT_SETTINGS, type EdgeLimitsConfig, parseEdgeLimits } from './edge-limits.js';
import { INBOX_SETTINGS, type InboxConfig, parseInbox } from './inbox.js';
import { PRESENCE_SETTINGS, type PresenceConfig, parsePresence } from './presence.js';
import { PUSH_SETTINGS, type PushConfig, parsePush } from './push.js';
import { isLoopbackHost, parseServer, SERVER_SETTINGS, type ServerConfig } from './server.js';
import { addOptions, createReader, type Env, envOnlyHelp } from './settings.js';

export { redactUrl } from './cluster.js';
export type {
  ApiConfig,
  ApiLimitsConfig,
  AuthConfig,
  EdgeConfig,
  EdgeLimitsConfig,
  InboxConfig,
  PresenceConfig,
  PushConfig,
  RedisConfig,
  ServerConfig,
};

/**
 * The only reader of process.env: main.ts passes argv and env in, everything else receives the
 * frozen slices it needs. A flag wins over its environment variable, which wins over the default.
 */
export interface Config {
  readonly server: ServerConfig;
  readonly auth: AuthConfig;
  /** The gRPC API: bind address, caller authentication (API keys, TLS). */
  readonly api: ApiConfig;
  /** What one caller, stream or request of the gRPC API may take. */
  readonly apiLimits: ApiLimitsConfig;
  readonly edge: EdgeConfig;
  /** What one client, user or client address may take from the Socket.IO edge. */
  readonly edgeLimits: EdgeLimitsConfig;
  readonly push: PushConfig;
  readonly presence: PresenceConfig;
  /** The offline inbox of stored pushes. */
  readonly inbox: InboxConfig;
  /** Undefined: one node with the in-memory registry. */
  readonly redis: RedisConfig | undefined;
}

/** Thrown after --help has printed the option list. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
}

/** Every table under its --help heading, in --help order. */
const GROUPS = [
  ['Server:', SERVER_SETTINGS],
  ['Client authentication:', AUTH_SETTINGS],
  ['gRPC API access:', API_SETTINGS],
  ['gRPC API limits:', API_LIMIT_SETTINGS],
  ['Socket.IO edge:', EDGE_SETTINGS],
  ['Socket.IO edge limits:', EDGE_LIMIT_SETTINGS],
  ['Push:', PUSH_SETTINGS],
  ['Presence:', PRESENCE_SETTINGS],
  ['Delivery guarantees (offline inbox, receipts, idempotency):', INBOX_SETTINGS],
  ['Cluster mode (Redis):', CLUSTER_SETTINGS],
] as const;

/** One namespace for the one reader: a key appearing in two tables would shadow one of them. */
const SETTINGS = {
  ...SERVER_SETTINGS,
  ...AUTH_SETTINGS,
  ...API_SETTINGS,
  ...API_LIMIT_SETTINGS,
  ...EDGE_SETTINGS,
  ...EDGE_LIMIT_SETTINGS,
  ...PUSH_SETTINGS,
  ...PRESENCE_SETTINGS,
  ...INBOX_SETTINGS,
  ...CLUSTER_SETTINGS,
};

export function buildCommand(): Command {
  const program = new Command('pushgate')
    .description('Multi-device push engine: gRPC API for backends, Socket.IO edge for clients.')
    .allowExcessArguments(false);
  for (const [heading, specs] of GROUPS) addOptions(program, heading, specs);
  program.addHelpText('after', envOnlyHelp(SETTINGS));
  return program;
}

/** Parses flags (argv without node and script) and environment into a validated, frozen Config. */
export function parseConfig(argv: readonly string[], env: Env, command = buildCommand()): Config {
  command.exitOverride().configureOutput({ writeErr: () => {} });
  try {
    command.parse([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError && err.code === 'commander.helpDisplayed') throw new HelpRequested();
    throw new ConfigError((err as Error).message);
  }
  const settings = createReader(SETTINGS, command.opts(), env);
  // Each slice validates its own settings, in this order; the first bad one is reported.
  const server = parseServer(settings);
  const edge = parseEdge(settings);
  const edgeLimits = parseEdgeLimits(settings);
  const push = parsePush(settings);
  const presence = parsePresence(settings);
  const inbox = parseInbox(settings);
  const redis = parseCluster(settings);
  const auth = parseAuth(settings, server.dev);
  const api = parseApi(settings);
  const apiLimits = parseApiLimits(settings);
  checkApiAgainstPush(settings.describe, apiLimits, push);
  if (server.dev) checkDevOnLoopback(settings.describe, server, api);
  return Object.freeze({ server, auth, api, apiLimits, edge, edgeLimits, push, presence, inbox, redis });
}

/**
 * Development mode mints a token for any user at GET /dev/token, signed with the configured secret
 * when there is one, which production nodes sharing that secret accept. So it listens on loopback
 * only, where it may keep a configured secret (several local nodes need one between them).
 */
function checkDevOnLoopback(describe: (key: keyof typeof SETTINGS) => string, server: ServerConfig, api: ApiConfig): void {
  const exposed = [
    { key: 'host', host: server.host },
    { key: 'grpcHost', host: api.host },
  ] as const;
  for (const { key, host } of exposed) {
    if (isLoopbackHost(host)) continue;
    throw new ConfigError(
      `development mode (${describe('dev')}) listens on loopback only, because GET /dev/token mints a token for any user; ` +
        `${describe(key)} is ${host}: use 127.0.0.1, ::1 or localhost, or turn development mode off`,
    );
  }
}

/** Limits of the API that must leave room for what a push may legitimately be. */
function checkApiAgainstPush(describe: (key: keyof typeof SETTINGS) => string, limits: ApiLimitsConfig, push: PushConfig): void {
  if (limits.maxCallMs <= push.maxAckTimeoutMs) {
    // A push may wait maxAckTimeoutMs for acks; a shorter call cap would cut every such push short.
    throw new ConfigError(
      `${describe('maxCallMs')} (${limits.maxCallMs}) must exceed ${describe('maxAckTimeoutMs')} (${push.maxAckTimeoutMs})`,
    );
  }
  if (limits.maxReceiveBytes <= push.maxPayloadBytes) {
    throw new ConfigError(
      `${describe('maxReceiveBytes')} (${limits.maxReceiveBytes}) must exceed ${describe('maxPayloadBytes')} (${push.maxPayloadBytes})`,
    );
  }
}
