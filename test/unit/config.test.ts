import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLUSTER_SETTINGS } from '../../src/config/cluster.js';
import { type Config, parseConfig, redactUrl } from '../../src/config/config.js';
import { EDGE_SETTINGS } from '../../src/config/edge.js';
import { PRESENCE_SETTINGS } from '../../src/config/presence.js';
import { PUSH_SETTINGS } from '../../src/config/push.js';
import { SERVER_SETTINGS } from '../../src/config/server.js';
import type { Spec } from '../../src/config/settings.js';
import { ConfigError } from '../../src/errors.js';

const SETTINGS: Record<string, Spec> = {
  ...SERVER_SETTINGS,
  ...EDGE_SETTINGS,
  ...PUSH_SETTINGS,
  ...PRESENCE_SETTINGS,
  ...CLUSTER_SETTINGS,
};
const SECRET = 'a-configured-secret-that-is-long-enough-0123';
/** The minimum a production node needs: a way to verify tokens. */
const BASE = { PUSHGATE_JWT_SECRET: SECRET };

function parse(env: Record<string, string> = {}, argv: string[] = []): Config {
  return parseConfig(argv, { ...BASE, ...env });
}

/** The ConfigError a bad setting raises (fails the test if parsing succeeds or throws something else). */
function configError(env: Record<string, string | undefined>, argv: string[] = []): ConfigError {
  try {
    parseConfig(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)} ${argv.join(' ')}`);
}

function publicPem(kind: 'rsa2048' | 'rsa1024' | 'p256' | 'p384' | 'ed25519'): string {
  const pair =
    kind === 'rsa2048'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : kind === 'rsa1024'
        ? generateKeyPairSync('rsa', { modulusLength: 1024 })
        : kind === 'p256'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : kind === 'p384'
            ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
            : generateKeyPairSync('ed25519');
  return pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
}

describe('parseConfig defaults', () => {
  it('uses the documented defaults when only a secret is given', () => {
    const config = parse();
    expect(config.server.grpcPort).toBe(50051);
    expect(config.server.httpPort).toBe(3000);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.edge.clientTypes).toEqual(['app', 'pc', 'web']);
    expect(config.push.ackTimeoutMs).toBe(5000);
    expect(config.push.maxAckTimeoutMs).toBe(60000);
    expect(config.server.logLevel).toBe('info');
    expect(config.server.dev).toBe(false);
    expect(config.edge.heartbeatEvent).toBeUndefined();
    expect(config.server.nodeId).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
    expect(config.auth).toMatchObject({
      jwtSecret: SECRET,
      jwtPublicKey: undefined,
      jwtIssuer: undefined,
      jwtAudience: undefined,
      secretGenerated: false,
      insecureQueryAuth: false,
    });
  });

  it('returns a frozen config, auth and client type list included', () => {
    const config = parse();
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.auth)).toBe(true);
    expect(Object.isFrozen(config.edge.clientTypes)).toBe(true);
    expect(() => {
      (config.server as { grpcPort: number }).grpcPort = 1;
    }).toThrow(TypeError);
    expect(config.server.grpcPort).toBe(50051);
  });

  it('accepts port 0 (pick a free port) for both servers', () => {
    const config = parse({ PUSHGATE_GRPC_PORT: '0', PUSHGATE_HTTP_PORT: '0' });
    expect(config.server.grpcPort).toBe(0);
    expect(config.server.httpPort).toBe(0);
  });

  it('treats an empty environment variable as unset', () => {
    const config = parse({ PUSHGATE_GRPC_PORT: '', PUSHGATE_CLIENT_TYPES: '', PUSHGATE_JWT_PUBLIC_KEY: '' });
    expect(config.server.grpcPort).toBe(50051);
    expect(config.edge.clientTypes).toEqual(['app', 'pc', 'web']);
    expect(config.auth.jwtPublicKey).toBeUndefined();
  });

  it('reads every setting from its environment variable', () => {
    const config = parse({
      PUSHGATE_GRPC_PORT: '6001',
      PUSHGATE_HTTP_PORT: '6002',
      PUSHGATE_HOST: '::1',
      PUSHGATE_NODE_ID: 'edge-1.eu_west',
      PUSHGATE_CLIENT_TYPES: ' Ios, android ,web ',
      PUSHGATE_ACK_TIMEOUT_MS: '250',
      PUSHGATE_HEARTBEAT_EVENT: 'heartbeat',
      PUSHGATE_JWT_ISSUER: 'https://auth.example',
      PUSHGATE_JWT_AUDIENCE: 'pushgate',
      PUSHGATE_INSECURE_QUERY_AUTH: 'true',
      LOG_LEVEL: 'DEBUG',
    });
    expect(config).toMatchObject({
      server: { grpcPort: 6001, httpPort: 6002, host: '::1', nodeId: 'edge-1.eu_west', logLevel: 'debug' },
      edge: { clientTypes: ['ios', 'android', 'web'], heartbeatEvent: 'heartbeat' },
      push: { ackTimeoutMs: 250 },
    });
    expect(config.auth).toMatchObject({ jwtIssuer: 'https://auth.example', jwtAudience: 'pushgate', insecureQueryAuth: true });
  });
});

describe('parseConfig precedence', () => {
  it('reads every numeric flag into the same setting as its environment variable', () => {
    // A flag whose value commander stores under another name would be silently ignored.
    const base = { PUSHGATE_NODE_ID: 'n-1', REDIS_URL: 'redis://127.0.0.1:6390' };
    const numeric = Object.values(SETTINGS).filter((spec) => !spec.envOnly && /^\d+$/.test(spec.fallback ?? ''));
    expect(numeric.length).toBeGreaterThan(10);
    for (const spec of numeric) {
      const value = String(Number(spec.fallback) + 1);
      const fromFlag = parse(base, [spec.flag.split(' ')[0]!, value]);
      expect(fromFlag, spec.flag).toEqual(parse({ ...base, [spec.env]: value }));
      expect(fromFlag, spec.flag).not.toEqual(parse(base));
    }
  });

  it('lets a flag win over its environment variable', () => {
    const config = parse(
      {
        PUSHGATE_GRPC_PORT: '7001',
        PUSHGATE_HTTP_PORT: '7002',
        PUSHGATE_CLIENT_TYPES: 'app',
        PUSHGATE_ACK_TIMEOUT_MS: '100',
        LOG_LEVEL: 'warn',
      },
      ['--grpc-port', '8001', '--http-port', '8002', '--client-types', 'pc,web', '--ack-timeout-ms', '900', '--log-level', 'error'],
    );
    expect(config.server.grpcPort).toBe(8001);
    expect(config.server.httpPort).toBe(8002);
    expect(config.edge.clientTypes).toEqual(['pc', 'web']);
    expect(config.push.ackTimeoutMs).toBe(900);
    expect(config.server.logLevel).toBe('error');
  });

  it('lets --dev turn development mode on even when PUSHGATE_DEV says 0', () => {
    const config = parse({ PUSHGATE_DEV: '0' }, ['--dev']);
    expect(config.server.dev).toBe(true);
  });

  it('refuses unknown flags', () => {
    const err = configError(BASE, ['--grcp-port', '1']);
    expect(err.message).toContain('--grcp-port');
  });
});

describe('parseConfig development mode', () => {
  it('generates a random secret and binds 127.0.0.1 by default', () => {
    const a = parseConfig([], { PUSHGATE_DEV: '1' });
    const b = parseConfig([], { PUSHGATE_DEV: '1' });
    expect(a.server.dev).toBe(true);
    expect(a.server.host).toBe('127.0.0.1');
    expect(a.auth.secretGenerated).toBe(true);
    expect(a.auth.jwtSecret).toBeDefined();
    expect(a.auth.jwtSecret!.length).toBeGreaterThanOrEqual(32);
    expect(a.auth.jwtSecret).not.toBe(b.auth.jwtSecret);
  });

  it('keeps a configured secret and an explicit loopback host', () => {
    const config = parse({ PUSHGATE_DEV: 'yes', PUSHGATE_HOST: '127.0.0.2' });
    expect(config.auth.jwtSecret).toBe(SECRET);
    expect(config.auth.secretGenerated).toBe(false);
    expect(config.server.host).toBe('127.0.0.2');
  });

  it('accepts every loopback address for both hosts', () => {
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', 'localhost']) {
      const config = parse({ PUSHGATE_DEV: '1', PUSHGATE_HOST: host, PUSHGATE_GRPC_HOST: host });
      expect([config.server.host, config.api.host]).toEqual([host, host]);
    }
    for (const host of ['LOCALHOST', '::ffff:127.0.0.1']) expect(parse({ PUSHGATE_DEV: '1', PUSHGATE_HOST: host }).server.host).toBe(host);
  });

  it.each([
    ['0.0.0.0', 'PUSHGATE_HOST', '--host / PUSHGATE_HOST'],
    ['::', 'PUSHGATE_HOST', '--host / PUSHGATE_HOST'],
    ['10.1.2.3', 'PUSHGATE_HOST', '--host / PUSHGATE_HOST'],
    ['pushgate.example.com', 'PUSHGATE_HOST', '--host / PUSHGATE_HOST'],
    ['128.0.0.1', 'PUSHGATE_HOST', '--host / PUSHGATE_HOST'],
    ['0.0.0.0', 'PUSHGATE_GRPC_HOST', '--grpc-host / PUSHGATE_GRPC_HOST'],
  ])('refuses to start on %s (%s), naming the dev flag and the host setting', (host, variable, named) => {
    // With API keys, so the gRPC host's own rule (no unauthenticated API off loopback) is satisfied.
    const env = { ...BASE, PUSHGATE_API_KEYS: 'svc:push:0123456789abcdef0123456789', PUSHGATE_DEV: '1', [variable]: host };
    const err = configError(env);
    expect(err.message).toContain('development mode (--dev / PUSHGATE_DEV) listens on loopback only');
    expect(err.message).toContain(`${named} is ${host}`);
    // The same host without development mode is a normal production node.
    const { PUSHGATE_DEV: _dev, ...production } = env;
    expect(parseConfig([], production)).toBeDefined();
  });

  it('refuses --dev with --host 0.0.0.0 from flags too, with a configured secret or a generated one', () => {
    expect(configError(BASE, ['--dev', '--host', '0.0.0.0']).message).toContain('--host / PUSHGATE_HOST is 0.0.0.0');
    expect(configError({}, ['--dev', '--host', '0.0.0.0']).message).toContain('--dev / PUSHGATE_DEV');
  });
});

describe('parseConfig demo page', () => {
  it('is off in production, on in development mode, and on in production when enabled', () => {
    expect(parse().server.demoPage).toBe(false);
    expect(parse({ PUSHGATE_DEV: '1' }).server.demoPage).toBe(true);
    expect(parse({ PUSHGATE_DEMO_PAGE: 'true' }).server.demoPage).toBe(true);
    expect(parse({}, ['--demo-page']).server.demoPage).toBe(true);
    expect(parse({ PUSHGATE_DEMO_PAGE: '0' }).server.demoPage).toBe(false);
  });

  it('names the setting when its value is not a boolean', () => {
    expect(configError({ ...BASE, PUSHGATE_DEMO_PAGE: 'sometimes' }).message).toContain('--demo-page / PUSHGATE_DEMO_PAGE');
  });
});

describe('parseConfig public keys', () => {
  it.each([
    ['RSA 2048', 'rsa2048'],
    ['EC P-256', 'p256'],
  ] as const)('accepts an %s public key as PEM text, without a secret', (_label, kind) => {
    const pem = publicPem(kind);
    const config = parseConfig([], { PUSHGATE_JWT_PUBLIC_KEY: pem });
    expect(config.auth.jwtPublicKey).toBe(pem);
    expect(config.auth.jwtSecret).toBeUndefined();
    expect(config.auth.secretGenerated).toBe(false);
  });

  it('reads the public key from a file path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-config-'));
    try {
      const pem = publicPem('p256');
      const path = join(dir, 'jwt.pub.pem');
      writeFileSync(path, pem);
      expect(parseConfig(['--jwt-public-key', path], {}).auth.jwtPublicKey).toBe(pem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['an Ed25519 key', () => publicPem('ed25519')],
    ['an EC key on P-384 (ES256 needs P-256)', () => publicPem('p384')],
    ['an RSA key under 2048 bits (RS256 cannot use it)', () => publicPem('rsa1024')],
  ])('refuses %s, naming PUSHGATE_JWT_PUBLIC_KEY', (_label, pem) => {
    const err = configError({ PUSHGATE_JWT_PUBLIC_KEY: pem() });
    expect(err.message).toContain('PUSHGATE_JWT_PUBLIC_KEY');
  });
});

describe('parseConfig refuses bad values, naming the setting', () => {
  const cases: [string, Record<string, string>, string[], string][] = [
    ['a non-numeric gRPC port', { PUSHGATE_GRPC_PORT: 'http' }, [], 'PUSHGATE_GRPC_PORT'],
    ['an out-of-range gRPC port', { PUSHGATE_GRPC_PORT: '65536' }, [], 'PUSHGATE_GRPC_PORT'],
    ['a negative HTTP port', { PUSHGATE_HTTP_PORT: '-1' }, [], 'PUSHGATE_HTTP_PORT'],
    ['a fractional HTTP port', { PUSHGATE_HTTP_PORT: '80.5' }, [], 'PUSHGATE_HTTP_PORT'],
    ['a bad port flag', {}, ['--http-port', 'x'], '--http-port'],
    ['a zero ack timeout', { PUSHGATE_ACK_TIMEOUT_MS: '0' }, [], 'PUSHGATE_ACK_TIMEOUT_MS'],
    ['a negative ack timeout', { PUSHGATE_ACK_TIMEOUT_MS: '-5' }, [], 'PUSHGATE_ACK_TIMEOUT_MS'],
    ['a non-number ack timeout', { PUSHGATE_ACK_TIMEOUT_MS: '5s' }, [], 'PUSHGATE_ACK_TIMEOUT_MS'],
    [
      'an ack timeout above the maximum',
      { PUSHGATE_ACK_TIMEOUT_MS: '9000', PUSHGATE_MAX_ACK_TIMEOUT_MS: '8000' },
      [],
      'PUSHGATE_ACK_TIMEOUT_MS',
    ],
    ['an empty client type list', { PUSHGATE_CLIENT_TYPES: ' , ,' }, [], 'PUSHGATE_CLIENT_TYPES'],
    ['a client type with a space', { PUSHGATE_CLIENT_TYPES: 'app,smart tv' }, [], 'PUSHGATE_CLIENT_TYPES'],
    ['a client type with a symbol', { PUSHGATE_CLIENT_TYPES: 'app,web!' }, [], 'PUSHGATE_CLIENT_TYPES'],
    ['an unknown LOG_LEVEL', { LOG_LEVEL: 'verbose' }, [], 'LOG_LEVEL'],
    ['a JWT secret under 32 characters', { PUSHGATE_JWT_SECRET: 'short-secret' }, [], 'PUSHGATE_JWT_SECRET'],
    ['a node id with a space', { PUSHGATE_NODE_ID: 'node 1' }, [], 'PUSHGATE_NODE_ID'],
    ['a node id over 64 characters', { PUSHGATE_NODE_ID: 'n'.repeat(65) }, [], 'PUSHGATE_NODE_ID'],
    ['a PUSHGATE_DEV value that is not a boolean', { PUSHGATE_DEV: 'maybe' }, [], 'PUSHGATE_DEV'],
    [
      'a PUSHGATE_INSECURE_QUERY_AUTH value that is not a boolean',
      { PUSHGATE_INSECURE_QUERY_AUTH: '2' },
      [],
      'PUSHGATE_INSECURE_QUERY_AUTH',
    ],
    ['a REDIS_URL that is not a URL', { REDIS_URL: 'localhost:6379' }, [], 'REDIS_URL'],
    ['a REDIS_URL with another scheme', { REDIS_URL: 'http://localhost:6379' }, [], 'REDIS_URL'],
    ['several REDIS_URLs without cluster mode', { REDIS_URL: 'redis://a:1,redis://b:2' }, [], 'PUSHGATE_REDIS_CLUSTER'],
    ['PUSHGATE_REDIS_CLUSTER without REDIS_URL', { PUSHGATE_REDIS_CLUSTER: '1' }, [], 'REDIS_URL'],
    ['a Redis prefix with a brace', { REDIS_URL: 'redis://a:1', PUSHGATE_REDIS_PREFIX: 'pg{x}' }, [], 'PUSHGATE_REDIS_PREFIX'],
    ['zero Redis shards', { REDIS_URL: 'redis://a:1', PUSHGATE_REDIS_SHARDS: '0' }, [], 'PUSHGATE_REDIS_SHARDS'],
    [
      'a command timeout over half the lease',
      { REDIS_URL: 'redis://a:1', PUSHGATE_NODE_LEASE_MS: '1000', PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: '600' },
      [],
      'PUSHGATE_REDIS_COMMAND_TIMEOUT_MS',
    ],
    ['a zero presence retention', { PUSHGATE_PRESENCE_RETENTION: '0' }, [], 'PUSHGATE_PRESENCE_RETENTION'],
    ['a heartbeat event with a space', { PUSHGATE_HEARTBEAT_EVENT: 'heart beat' }, [], 'PUSHGATE_HEARTBEAT_EVENT'],
    [
      'a PEM that is not a key',
      { PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n' },
      [],
      'PUSHGATE_JWT_PUBLIC_KEY',
    ],
    [
      'a public key path that does not exist',
      { PUSHGATE_JWT_SECRET: '', PUSHGATE_JWT_PUBLIC_KEY: '/nonexistent/pushgate/jwt.pem' },
      [],
      'PUSHGATE_JWT_PUBLIC_KEY',
    ],
  ];

  it.each(cases)('%s', (_label, env, argv, named) => {
    const err = configError({ ...BASE, ...env }, argv);
    expect(err.message).toContain(named);
  });

  it('refuses a secret and a public key together, naming both', () => {
    const err = configError({ PUSHGATE_JWT_SECRET: SECRET, PUSHGATE_JWT_PUBLIC_KEY: publicPem('p256') });
    expect(err.message).toContain('PUSHGATE_JWT_SECRET');
    expect(err.message).toContain('PUSHGATE_JWT_PUBLIC_KEY');
  });

  it('refuses to start without a secret or key outside development mode, pointing at both and at PUSHGATE_DEV', () => {
    const err = configError({});
    expect(err.message).toContain('PUSHGATE_JWT_SECRET');
    expect(err.message).toContain('PUSHGATE_JWT_PUBLIC_KEY');
    expect(err.message).toContain('PUSHGATE_DEV');
    // An empty secret is no secret.
    expect(configError({ PUSHGATE_JWT_SECRET: '' }).message).toContain('PUSHGATE_JWT_SECRET');
  });

  it('never echoes a rejected secret in the error message', () => {
    const err = configError({ PUSHGATE_JWT_SECRET: 'hunter2-too-short' });
    expect(err.message).not.toContain('hunter2');
  });
});

describe('the gRPC API host', () => {
  it('is loopback by default, apart from the edge host', () => {
    const config = parse({ PUSHGATE_HOST: '0.0.0.0' });
    expect(config.api.host).toBe('127.0.0.1');
    expect(config.server.host).toBe('0.0.0.0');
  });

  it('refuses a non-loopback address without caller authentication, naming every way out', () => {
    for (const host of ['0.0.0.0', '10.1.2.3', '::']) {
      const err = configError({ ...BASE, PUSHGATE_GRPC_HOST: host });
      expect(err.message).toContain(`listen on ${host} (--grpc-host / PUSHGATE_GRPC_HOST) with no caller authentication`);
      for (const setting of [
        'PUSHGATE_API_KEYS_FILE',
        'PUSHGATE_API_KEYS',
        'PUSHGATE_GRPC_TLS_CLIENT_CA',
        'PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED',
      ]) {
        expect(err.message).toContain(setting);
      }
    }
  });

  it('starts on a non-loopback address with API keys, or when explicitly allowed open', () => {
    expect(parse({ PUSHGATE_GRPC_HOST: '0.0.0.0', PUSHGATE_API_KEYS: 'svc:push:0123456789abcdef0123456789' }).api.host).toBe('0.0.0.0');
    expect(parse({ PUSHGATE_GRPC_HOST: '0.0.0.0', PUSHGATE_GRPC_ALLOW_UNAUTHENTICATED: '1' }).api.allowUnauthenticated).toBe(true);
    for (const host of ['127.0.0.1', '127.8.9.10', '::1', 'localhost']) expect(parse({ PUSHGATE_GRPC_HOST: host }).api.host).toBe(host);
  });

  it('refuses half a TLS setup and a client CA without TLS, naming the settings', () => {
    expect(configError({ ...BASE, PUSHGATE_GRPC_TLS_CERT: '/etc/hostname' }).message).toContain('go together');
    expect(configError({ ...BASE, PUSHGATE_GRPC_TLS_CERT: '/nonexistent.pem', PUSHGATE_GRPC_TLS_KEY: '/etc/hostname' }).message).toContain(
      'PUSHGATE_GRPC_TLS_CERT names a file that does not exist',
    );
  });

  it('keeps the call cap above the longest ack wait and the receive limit above the payload limit', () => {
    expect(configError({ ...BASE, PUSHGATE_GRPC_MAX_CALL_MS: '60000' }).message).toContain(
      'must exceed --max-ack-timeout-ms / PUSHGATE_MAX_ACK_TIMEOUT_MS',
    );
    expect(configError({ ...BASE, PUSHGATE_GRPC_MAX_RECEIVE_BYTES: '262144' }).message).toContain('must exceed --max-payload-bytes');
  });
});

describe('cluster mode settings', () => {
  it('leave cluster mode off without REDIS_URL', () => {
    expect(parse().redis).toBeUndefined();
  });

  it('turn it on with REDIS_URL, with defaults that bound failure detection to 20 s', () => {
    const redis = parse({ REDIS_URL: 'redis://127.0.0.1:6390' }).redis!;
    expect(redis).toMatchObject({ urls: ['redis://127.0.0.1:6390'], cluster: false, keyPrefix: 'pushgate:', shards: 1 });
    expect(redis.leaseTtlMs + redis.reapIntervalMs).toBeLessThanOrEqual(30_000);
  });

  it('take a Redis Cluster as comma-separated seed URLs', () => {
    const redis = parse({ REDIS_URL: 'redis://a:7000, redis://b:7001', PUSHGATE_REDIS_CLUSTER: '1', PUSHGATE_REDIS_SHARDS: '16' }).redis!;
    expect(redis).toMatchObject({ urls: ['redis://a:7000', 'redis://b:7001'], cluster: true, shards: 16 });
  });

  it('never echo a Redis password in an error', () => {
    const err = configError({ ...BASE, REDIS_URL: 'http://user:hunter2@redis.internal:6379' });
    expect(err.message).toContain('REDIS_URL');
    expect(err.message).not.toContain('hunter2');
    // A password with '/' or an unencoded '@' is still a password; an unparseable URL is not echoed at all.
    for (const url of [
      'http://user:hun/ter2@redis.internal:6379',
      'http://user:hun@ter2@redis.internal:6379',
      'http://user:hunter2@[bad',
    ]) {
      const message = configError({ ...BASE, REDIS_URL: url }).message;
      expect(message, url).toContain('REDIS_URL');
      expect(message, url).not.toMatch(/hun|ter2/);
    }
  });

  it('redacts only the password of a URL it shows', () => {
    expect(redactUrl('rediss://app:s3cr%2Ft@redis.internal:6380/2')).toBe('rediss://app:***@redis.internal:6380/2');
    expect(redactUrl('redis://redis.internal:6379')).toBe('redis://redis.internal:6379');
    expect(redactUrl('redis://app:p/w@host:1')).toBe('<a URL that does not parse>');
  });
});

describe('PUSHGATE_CORS_ORIGINS', () => {
  it('is empty (same origin only) by default and takes a list of origins or *', () => {
    expect(parse().edge.corsOrigins).toEqual([]);
    expect(parse({ PUSHGATE_CORS_ORIGINS: 'https://app.example.com, http://localhost:5173' }).edge.corsOrigins).toEqual([
      'https://app.example.com',
      'http://localhost:5173',
    ]);
    expect(parse({ PUSHGATE_CORS_ORIGINS: '*' }).edge.corsOrigins).toEqual(['*']);
  });

  it.each(['app.example.com', 'https://app.example.com/', 'https://app.example.com/path', 'ftp://x.example'])(
    'refuses %s, naming the variable',
    (origin) => {
      const err = configError({ ...BASE, PUSHGATE_CORS_ORIGINS: origin });
      expect(err.message).toContain('PUSHGATE_CORS_ORIGINS');
      expect(err.message).toContain(origin);
    },
  );
});
