import { describe, expect, it } from 'vitest';
import { buildCommand, type Config, parseConfig } from '../../src/config/config.js';
import { ConfigError } from '../../src/errors.js';

/** The Socket.IO edge limits (src/config/edge-limits.ts) and the origin allowlist's two names. */

const BASE = { PUSHGATE_JWT_SECRET: 'a-test-secret-that-is-at-least-32-characters' };

function parse(env: Record<string, string> = {}, argv: string[] = []): Config {
  return parseConfig(argv, { ...BASE, ...env });
}

function configError(env: Record<string, string>): ConfigError {
  try {
    parse(env);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('edge limits', () => {
  it('has defaults that bound every client and leave the per-address limits off', () => {
    expect(parse().edgeLimits).toEqual({
      maxClientBufferBytes: 4 * 1024 * 1024,
      maxAckBytes: 16 * 1024,
      maxAckDepth: 32,
      maxSessionsPerUser: 64,
      sessionLimitPolicy: 'refuse',
      maxConnectionsPerIp: 0,
      maxHandshakesPerIpPerS: 0,
      trustedProxies: [],
      handshakeTimeoutMs: 10_000,
    });
  });

  it('reads every setting from its variable and its flag', () => {
    const env = {
      PUSHGATE_MAX_CLIENT_BUFFER_BYTES: '1048576',
      PUSHGATE_MAX_ACK_BYTES: '2048',
      PUSHGATE_MAX_ACK_DEPTH: '8',
      PUSHGATE_MAX_SESSIONS_PER_USER: '0',
      PUSHGATE_SESSION_LIMIT_POLICY: 'evict_oldest',
      PUSHGATE_MAX_CONNECTIONS_PER_IP: '100',
      PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S: '20',
      PUSHGATE_TRUSTED_PROXIES: '10.0.0.0/8, ::1, loopback',
      PUSHGATE_HANDSHAKE_TIMEOUT_MS: '5000',
    };
    expect(parse(env).edgeLimits).toEqual({
      maxClientBufferBytes: 1048576,
      maxAckBytes: 2048,
      maxAckDepth: 8,
      maxSessionsPerUser: 0,
      sessionLimitPolicy: 'evict_oldest',
      maxConnectionsPerIp: 100,
      maxHandshakesPerIpPerS: 20,
      trustedProxies: ['10.0.0.0/8', '::1', 'loopback'],
      handshakeTimeoutMs: 5000,
    });
    expect(parse({}, ['--max-sessions-per-user', '5', '--session-limit-policy', 'evict_oldest']).edgeLimits).toMatchObject({
      maxSessionsPerUser: 5,
      sessionLimitPolicy: 'evict_oldest',
    });
  });

  it.each([
    ['PUSHGATE_MAX_CLIENT_BUFFER_BYTES', '10'],
    ['PUSHGATE_MAX_ACK_BYTES', 'lots'],
    ['PUSHGATE_MAX_ACK_DEPTH', '33'],
    ['PUSHGATE_MAX_SESSIONS_PER_USER', '-1'],
    ['PUSHGATE_SESSION_LIMIT_POLICY', 'kick'],
    ['PUSHGATE_MAX_CONNECTIONS_PER_IP', '1.5'],
    ['PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S', 'ten'],
    ['PUSHGATE_TRUSTED_PROXIES', '10.0.0.0/33'],
    ['PUSHGATE_TRUSTED_PROXIES', 'proxy.internal'],
    ['PUSHGATE_HANDSHAKE_TIMEOUT_MS', '0'],
  ])('refuses %s=%s, naming the variable and the value', (variable, value) => {
    const err = configError({ [variable]: value });
    expect(err.message).toContain(variable);
    expect(err.message).toContain(value);
  });
});

describe('PUSHGATE_ALLOWED_ORIGINS', () => {
  it('is read under its new name and its old one, PUSHGATE_CORS_ORIGINS; the new name wins', () => {
    expect(parse({ PUSHGATE_ALLOWED_ORIGINS: 'https://app.example.com' }).edge.corsOrigins).toEqual(['https://app.example.com']);
    expect(parse({ PUSHGATE_CORS_ORIGINS: 'https://old.example.com' }).edge.corsOrigins).toEqual(['https://old.example.com']);
    expect(
      parse({ PUSHGATE_ALLOWED_ORIGINS: 'https://new.example.com', PUSHGATE_CORS_ORIGINS: 'https://old.example.com' }).edge.corsOrigins,
    ).toEqual(['https://new.example.com']);
    expect(parse({}, ['--allowed-origins', '*']).edge.corsOrigins).toEqual(['*']);
  });

  it('names both variables when the value is bad', () => {
    const err = configError({ PUSHGATE_ALLOWED_ORIGINS: 'app.example.com' });
    expect(err.message).toContain('PUSHGATE_ALLOWED_ORIGINS');
    expect(err.message).toContain('PUSHGATE_CORS_ORIGINS');
  });

  it('is in --help with its old name, as is every edge limit', () => {
    // Commander wraps long lines; compare the words.
    const help = buildCommand().helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/--allowed-origins <list>[\s\S]*PUSHGATE_ALLOWED_ORIGINS or its old name PUSHGATE_CORS_ORIGINS/);
    for (const variable of [
      'PUSHGATE_MAX_CLIENT_BUFFER_BYTES',
      'PUSHGATE_MAX_ACK_BYTES',
      'PUSHGATE_MAX_ACK_DEPTH',
      'PUSHGATE_MAX_SESSIONS_PER_USER',
      'PUSHGATE_SESSION_LIMIT_POLICY',
      'PUSHGATE_MAX_CONNECTIONS_PER_IP',
      'PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S',
      'PUSHGATE_TRUSTED_PROXIES',
      'PUSHGATE_HANDSHAKE_TIMEOUT_MS',
    ]) {
      expect(help).toContain(variable);
    }
  });
});
