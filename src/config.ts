import { createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { ConfigError } from './errors.js';

/**
 * The only reader of process.env: main.ts passes argv and env in, everything else receives the
 * frozen slices it needs. A flag wins over its environment variable, which wins over the default.
 */

export interface AuthConfig {
  /** HS256 secret; undefined when a public key is used. */
  readonly jwtSecret: string | undefined;
  /** PEM public key (RS256 or ES256); undefined when a secret is used. */
  readonly jwtPublicKey: string | undefined;
  readonly jwtIssuer: string | undefined;
  readonly jwtAudience: string | undefined;
  /** True when the secret was generated because PUSHGATE_DEV is on and none was given. */
  readonly secretGenerated: boolean;
  /** Legacy mode: trust `userId` from the query string when no token is sent. */
  readonly insecureQueryAuth: boolean;
}

/** Cluster mode: present when REDIS_URL is set. */
export interface RedisConfig {
  /** One URL, or for a Redis Cluster the seed nodes' URLs. */
  readonly urls: readonly string[];
  readonly cluster: boolean;
  /** Prepended to every key and channel, so several deployments can share one Redis. */
  readonly keyPrefix: string;
  /** Partitions of the registry; each is one hash slot. Every node of a deployment must agree. */
  readonly shards: number;
  /** A Redis command that has not answered by then fails (registry_unavailable). */
  readonly commandTimeoutMs: number;
  /** A node whose lease is this old is dead: its sessions are reaped. */
  readonly leaseTtlMs: number;
  /** How often each node looks for dead nodes to reap. */
  readonly reapIntervalMs: number;
  /** How long past a push's ack timeout a caller waits for another node's reply before failing its sessions. */
  readonly nodeReplyGraceMs: number;
}

export interface Config {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly host: string;
  readonly nodeId: string;
  readonly clientTypes: readonly string[];
  readonly ackTimeoutMs: number;
  readonly maxAckTimeoutMs: number;
  readonly maxPayloadBytes: number;
  readonly dev: boolean;
  readonly heartbeatEvent: string | undefined;
  /** Browser origins allowed to use Socket.IO's HTTP long-polling from another site; empty = same origin only. */
  readonly corsOrigins: readonly string[];
  readonly pingIntervalMs: number;
  readonly pingTimeoutMs: number;
  readonly presenceBufferSize: number;
  /** Presence events kept for resuming streams: at most this many (per registry shard)… */
  readonly presenceRetention: number;
  /** …and none older than this. */
  readonly presenceRetentionMs: number;
  readonly shutdownGraceMs: number;
  /** Undefined: one node with the in-memory registry. */
  readonly redis: RedisConfig | undefined;
  readonly logLevel: string;
  readonly auth: AuthConfig;
}

/** Thrown after --help has printed the option list. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
}

type Env = Readonly<Record<string, string | undefined>>;

interface Spec {
  readonly flag: string;
  readonly env: string;
  readonly help: string;
  /** Shown in --help; undefined means "unset". */
  readonly fallback?: string;
  /** No flag: secrets belong in the environment, not in `ps` output. */
  readonly envOnly?: boolean;
  readonly boolean?: boolean;
}

const SPECS = {
  grpcPort: { flag: '--grpc-port <port>', env: 'PUSHGATE_GRPC_PORT', fallback: '50051', help: 'gRPC API port; 0 picks a free port' },
  httpPort: { flag: '--http-port <port>', env: 'PUSHGATE_HTTP_PORT', fallback: '3000', help: 'Socket.IO and HTTP port; 0 picks a free port' },
  host: { flag: '--host <address>', env: 'PUSHGATE_HOST', fallback: '0.0.0.0 (127.0.0.1 in dev mode)', help: 'bind address of both servers' },
  nodeId: { flag: '--node-id <id>', env: 'PUSHGATE_NODE_ID', fallback: '<hostname>-<random>', help: 'this node’s id in session records' },
  jwtSecret: { flag: '', env: 'PUSHGATE_JWT_SECRET', envOnly: true, help: 'HS256 secret for client tokens (at least 32 characters)' },
  jwtPublicKey: { flag: '--jwt-public-key <pem-or-path>', env: 'PUSHGATE_JWT_PUBLIC_KEY', help: 'RS256/ES256 public key (PEM text or a file path), instead of a secret' },
  jwtIssuer: { flag: '--jwt-issuer <iss>', env: 'PUSHGATE_JWT_ISSUER', help: 'required `iss` claim of client tokens' },
  jwtAudience: { flag: '--jwt-audience <aud>', env: 'PUSHGATE_JWT_AUDIENCE', help: 'required `aud` claim of client tokens' },
  clientTypes: { flag: '--client-types <list>', env: 'PUSHGATE_CLIENT_TYPES', fallback: 'app,pc,web', help: 'comma-separated client types clients may declare' },
  ackTimeoutMs: { flag: '--ack-timeout-ms <ms>', env: 'PUSHGATE_ACK_TIMEOUT_MS', fallback: '5000', help: 'default wait for each session’s ack' },
  maxAckTimeoutMs: { flag: '--max-ack-timeout-ms <ms>', env: 'PUSHGATE_MAX_ACK_TIMEOUT_MS', fallback: '60000', help: 'largest ack_timeout_ms a caller may ask for' },
  maxPayloadBytes: { flag: '--max-payload-bytes <n>', env: 'PUSHGATE_MAX_PAYLOAD_BYTES', fallback: '262144', help: 'largest encoded `data` of a push' },
  dev: { flag: '--dev', env: 'PUSHGATE_DEV', boolean: true, fallback: 'off', help: 'UNSAFE: development token endpoint and a generated secret' },
  insecureQueryAuth: { flag: '--insecure-query-auth', env: 'PUSHGATE_INSECURE_QUERY_AUTH', boolean: true, fallback: 'off', help: 'UNSAFE: trust userId from the query string (legacy clients)' },
  heartbeatEvent: { flag: '--heartbeat-event <name>', env: 'PUSHGATE_HEARTBEAT_EVENT', help: 'application heartbeat event that refreshes last_seen_at (off when unset)' },
  corsOrigins: { flag: '--cors-origins <list>', env: 'PUSHGATE_CORS_ORIGINS', fallback: 'none (same origin only)', help: 'comma-separated browser origins (https://app.example.com) allowed cross-site, or *' },
  pingIntervalMs: { flag: '--ping-interval-ms <ms>', env: 'PUSHGATE_PING_INTERVAL_MS', fallback: '25000', help: 'Socket.IO ping interval' },
  pingTimeoutMs: { flag: '--ping-timeout-ms <ms>', env: 'PUSHGATE_PING_TIMEOUT_MS', fallback: '20000', help: 'Socket.IO pong wait before a connection counts as dead' },
  presenceBufferSize: { flag: '--presence-buffer <events>', env: 'PUSHGATE_PRESENCE_BUFFER', fallback: '10000', help: 'events a WatchPresence reader may fall behind before its stream ends' },
  shutdownGraceMs: { flag: '--shutdown-grace-ms <ms>', env: 'PUSHGATE_SHUTDOWN_GRACE_MS', fallback: '10000', help: 'how long shutdown waits for in-flight calls' },
  presenceRetention: { flag: '--presence-retention <events>', env: 'PUSHGATE_PRESENCE_RETENTION', fallback: '10000', help: 'presence events kept for resume_after (per shard in cluster mode)' },
  presenceRetentionMs: { flag: '--presence-retention-ms <ms>', env: 'PUSHGATE_PRESENCE_RETENTION_MS', fallback: '600000', help: 'oldest presence event kept for resume_after' },
  redisUrl: { flag: '--redis-url <url>', env: 'REDIS_URL', help: 'cluster mode: Redis URL (redis:// or rediss://); for a Redis Cluster, comma-separated seed URLs' },
  redisCluster: { flag: '--redis-cluster', env: 'PUSHGATE_REDIS_CLUSTER', boolean: true, fallback: 'off', help: 'REDIS_URL points at a Redis Cluster' },
  redisPrefix: { flag: '--redis-prefix <prefix>', env: 'PUSHGATE_REDIS_PREFIX', fallback: 'pushgate:', help: 'prefix of every Redis key and channel' },
  redisShards: { flag: '--redis-shards <n>', env: 'PUSHGATE_REDIS_SHARDS', fallback: '1', help: 'registry partitions (hash slots); raise on a Redis Cluster; same on every node' },
  redisCommandTimeoutMs: { flag: '--redis-command-timeout-ms <ms>', env: 'PUSHGATE_REDIS_COMMAND_TIMEOUT_MS', fallback: '2000', help: 'a Redis command slower than this fails with UNAVAILABLE' },
  nodeLeaseMs: { flag: '--node-lease-ms <ms>', env: 'PUSHGATE_NODE_LEASE_MS', fallback: '15000', help: 'cluster node lease TTL; refreshed every third of it' },
  reapIntervalMs: { flag: '--reap-interval-ms <ms>', env: 'PUSHGATE_REAP_INTERVAL_MS', fallback: '5000', help: 'how often nodes reap the sessions of nodes whose lease lapsed' },
  nodeReplyGraceMs: { flag: '--node-reply-grace-ms <ms>', env: 'PUSHGATE_NODE_REPLY_GRACE_MS', fallback: '500', help: 'wait past the ack timeout for another node’s push results' },
  logLevel: { flag: '--log-level <level>', env: 'LOG_LEVEL', fallback: 'info', help: 'fatal, error, warn, info, debug or trace' },
} as const satisfies Record<string, Spec>;

type Key = keyof typeof SPECS;

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;
const CLIENT_TYPE = /^[a-z0-9_-]{1,32}$/;
const EVENT_NAME = /^[\x21-\x7e]{1,128}$/;

function describe(key: Key): string {
  const spec: Spec = SPECS[key];
  const flag = spec.envOnly ? '' : `${spec.flag.split(' ')[0]} / `;
  return `${flag}${spec.env}`;
}

export function buildCommand(): Command {
  const program = new Command('pushgate')
    .description('Multi-device push engine: gRPC API for backends, Socket.IO edge for clients.')
    .allowExcessArguments(false);
  for (const spec of Object.values(SPECS) as Spec[]) {
    if (spec.envOnly) continue;
    const fallback = spec.fallback === undefined ? '' : `; default ${spec.fallback}`;
    program.addOption(new Option(spec.flag, `${spec.help} (env ${spec.env}${fallback})`));
  }
  program.addHelpText(
    'after',
    '\nEnvironment only:\n  PUSHGATE_JWT_SECRET  HS256 secret for client tokens (at least 32 characters)\n',
  );
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
  const flags = command.opts<Record<string, string | boolean | undefined>>();

  const raw = (key: Key): string | undefined => {
    const spec: Spec = SPECS[key];
    if (!spec.envOnly) {
      const flagValue = flags[key];
      if (flagValue !== undefined) return String(flagValue);
    }
    const envValue = env[spec.env];
    return envValue === undefined || envValue === '' ? undefined : envValue;
  };
  const int = (key: Key, min: number, max: number): number => {
    const value = raw(key) ?? (SPECS[key] as Spec).fallback!;
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new ConfigError(`${describe(key)} must be a whole number from ${min} to ${max}, got "${value}"`);
    }
    return Number(value);
  };
  const bool = (key: Key): boolean => {
    const value = raw(key);
    if (value === undefined) return false;
    if (['1', 'true', 'yes', 'on'].includes(value.toLowerCase())) return true;
    if (['0', 'false', 'no', 'off'].includes(value.toLowerCase())) return false;
    throw new ConfigError(`${describe(key)} must be 1 or 0, got "${value}"`);
  };

  const dev = bool('dev');
  const logLevel = (raw('logLevel') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.has(logLevel)) {
    throw new ConfigError(`${describe('logLevel')} must be one of ${[...LOG_LEVELS].join(', ')}, got "${logLevel}"`);
  }

  const nodeId = raw('nodeId') ?? `${hostname().replace(/[^A-Za-z0-9._-]/g, '') || 'node'}-${randomBytes(3).toString('hex')}`;
  if (!NODE_ID.test(nodeId)) {
    throw new ConfigError(`${describe('nodeId')} must be 1-64 characters of A-Z a-z 0-9 . _ -, got "${nodeId}"`);
  }

  const clientTypes = (raw('clientTypes') ?? 'app,pc,web').split(',').map((t) => t.trim().toLowerCase()).filter(Boolean);
  const badType = clientTypes.find((t) => !CLIENT_TYPE.test(t));
  if (clientTypes.length === 0 || badType !== undefined) {
    throw new ConfigError(`${describe('clientTypes')} must list client types of a-z 0-9 _ - (e.g. "app,pc,web"), got "${raw('clientTypes')}"`);
  }

  const heartbeatEvent = raw('heartbeatEvent');
  if (heartbeatEvent !== undefined && !EVENT_NAME.test(heartbeatEvent)) {
    throw new ConfigError(`${describe('heartbeatEvent')} must be a printable event name without spaces, got "${heartbeatEvent}"`);
  }

  const corsOrigins = (raw('corsOrigins') ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  const badOrigin = corsOrigins.find((o) => o !== '*' && !isOrigin(o));
  if (badOrigin !== undefined) {
    throw new ConfigError(`${describe('corsOrigins')} must list origins like https://app.example.com (scheme, host, optional port) or *, got "${badOrigin}"`);
  }

  const ackTimeoutMs = int('ackTimeoutMs', 1, 3_600_000);
  const maxAckTimeoutMs = int('maxAckTimeoutMs', 1, 3_600_000);
  if (ackTimeoutMs > maxAckTimeoutMs) {
    throw new ConfigError(`${describe('ackTimeoutMs')} (${ackTimeoutMs}) exceeds ${describe('maxAckTimeoutMs')} (${maxAckTimeoutMs})`);
  }

  const config: Config = {
    grpcPort: int('grpcPort', 0, 65535),
    httpPort: int('httpPort', 0, 65535),
    host: raw('host') ?? (dev ? '127.0.0.1' : '0.0.0.0'),
    nodeId,
    clientTypes: Object.freeze(clientTypes),
    ackTimeoutMs,
    maxAckTimeoutMs,
    maxPayloadBytes: int('maxPayloadBytes', 1, 64 * 1024 * 1024),
    dev,
    heartbeatEvent,
    corsOrigins: Object.freeze(corsOrigins),
    pingIntervalMs: int('pingIntervalMs', 100, 600_000),
    pingTimeoutMs: int('pingTimeoutMs', 100, 600_000),
    presenceBufferSize: int('presenceBufferSize', 1, 1_000_000),
    presenceRetention: int('presenceRetention', 1, 10_000_000),
    presenceRetentionMs: int('presenceRetentionMs', 1000, 7 * 24 * 3_600_000),
    shutdownGraceMs: int('shutdownGraceMs', 0, 600_000),
    redis: parseRedis(raw, int, bool),
    logLevel,
    auth: Object.freeze(parseAuth(raw, dev, bool('insecureQueryAuth'))),
  };
  return Object.freeze(config);
}

function parseAuth(raw: (key: Key) => string | undefined, dev: boolean, insecureQueryAuth: boolean): AuthConfig {
  const secret = raw('jwtSecret');
  const keyValue = raw('jwtPublicKey');
  if (secret !== undefined && keyValue !== undefined) {
    throw new ConfigError(`set either ${describe('jwtSecret')} or ${describe('jwtPublicKey')}, not both`);
  }
  if (secret !== undefined && secret.length < 32) {
    throw new ConfigError(`${describe('jwtSecret')} must be at least 32 characters (HS256 needs 256 bits of key)`);
  }
  let publicKey: string | undefined;
  if (keyValue !== undefined) {
    publicKey = keyValue.includes('-----BEGIN') ? keyValue : readKeyFile(keyValue);
    const unusable = unusableKeyReason(publicKey);
    if (unusable !== undefined) {
      throw new ConfigError(`${describe('jwtPublicKey')} must be an RSA (RS256) or EC P-256 (ES256) public key, got ${unusable}`);
    }
  }
  const generate = secret === undefined && publicKey === undefined;
  if (generate && !dev) {
    throw new ConfigError(
      `no way to verify client tokens: set ${describe('jwtSecret')} or ${describe('jwtPublicKey')} (or ${describe('dev')}=1 for a generated development secret)`,
    );
  }
  return {
    jwtSecret: generate ? randomBytes(32).toString('base64url') : secret,
    jwtPublicKey: publicKey,
    jwtIssuer: raw('jwtIssuer'),
    jwtAudience: raw('jwtAudience'),
    secretGenerated: generate,
    insecureQueryAuth,
  };
}

function parseRedis(
  raw: (key: Key) => string | undefined,
  int: (key: Key, min: number, max: number) => number,
  bool: (key: Key) => boolean,
): RedisConfig | undefined {
  const value = raw('redisUrl');
  const cluster = bool('redisCluster');
  if (value === undefined) {
    if (cluster) throw new ConfigError(`${describe('redisCluster')} is on but ${describe('redisUrl')} is not set`);
    return undefined;
  }
  const urls = value.split(',').map((u) => u.trim()).filter(Boolean);
  for (const url of urls) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ConfigError(`${describe('redisUrl')} must be redis://host:port or rediss://host:port, got "${redactUrl(url)}"`);
    }
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
      throw new ConfigError(`${describe('redisUrl')} must use redis:// or rediss://, got "${redactUrl(url)}"`);
    }
  }
  if (urls.length > 1 && !cluster) {
    throw new ConfigError(`${describe('redisUrl')} lists ${urls.length} URLs; several seed URLs need ${describe('redisCluster')}=1`);
  }
  const keyPrefix = raw('redisPrefix') ?? 'pushgate:';
  if (!/^[\x21-\x7e]{0,64}$/.test(keyPrefix) || /[{}]/.test(keyPrefix)) {
    throw new ConfigError(`${describe('redisPrefix')} must be up to 64 printable characters without spaces or { }, got "${keyPrefix}"`);
  }
  const leaseTtlMs = int('nodeLeaseMs', 300, 600_000);
  const reapIntervalMs = int('reapIntervalMs', 100, 600_000);
  const commandTimeoutMs = int('redisCommandTimeoutMs', 50, 60_000);
  if (commandTimeoutMs * 2 > leaseTtlMs) {
    // A lease refresh (every third of the TTL) that can hang for half of it would let a live node lapse.
    throw new ConfigError(`${describe('redisCommandTimeoutMs')} (${commandTimeoutMs}) must be at most half of ${describe('nodeLeaseMs')} (${leaseTtlMs})`);
  }
  return Object.freeze({
    urls: Object.freeze(urls),
    cluster,
    keyPrefix,
    shards: int('redisShards', 1, 1024),
    commandTimeoutMs,
    leaseTtlMs,
    reapIntervalMs,
    nodeReplyGraceMs: int('nodeReplyGraceMs', 0, 60_000),
  });
}

/** A Redis URL as it may appear in an error or a log: without its password. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === value;
  } catch {
    return false;
  }
}

function readKeyFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${describe('jwtPublicKey')} is neither PEM text nor a readable file: ${(err as Error).message}`);
  }
}

/** Undefined for a key RS256 or ES256 can verify with; otherwise what the key is instead. */
function unusableKeyReason(pem: string): string | undefined {
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch (err) {
    throw new ConfigError(`${describe('jwtPublicKey')} is not a valid PEM public key: ${(err as Error).message}`);
  }
  const { modulusLength, namedCurve } = key.asymmetricKeyDetails ?? {};
  // RS256 verification refuses RSA keys under 2048 bits; ES256 is defined on P-256 only.
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return (modulusLength ?? 0) >= 2048 ? undefined : `a ${modulusLength}-bit RSA key (at least 2048 bits needed)`;
    case 'ec':
      return namedCurve === 'prime256v1' ? undefined : `an EC key on curve ${namedCurve}`;
    default:
      return key.asymmetricKeyType ?? 'an unknown key type';
  }
}
