import { readFileSync } from 'node:fs';
import { type ChannelCredentials, type ChannelOptions, credentials } from '@grpc/grpc-js';
import type { RetryOptions } from './retry.js';

/** PEM text, or a path to a PEM file (a string without "-----BEGIN"). */
export type Pem = string | Buffer;

/** TLS to the server. `true` trusts the system's CAs; give `ca` for a private CA, `cert` + `key` for mutual TLS. */
export interface TlsOptions {
  /** CA bundle that signed the server's certificate. Default: Node's root store. */
  readonly ca?: Pem;
  /** Client certificate, for servers with PUSHGATE_GRPC_TLS_CLIENT_CA (mutual TLS). Needs `key`. */
  readonly cert?: Pem;
  /** Private key of `cert`. */
  readonly key?: Pem;
  /** Name to check the server's certificate against, when it differs from the address's host. */
  readonly serverName?: string;
}

export interface PushgateClientOptions {
  /** The node's gRPC address, `host:port` (or any grpc-js target, e.g. `dns:///pushgate:50051`). */
  readonly address: string;
  /** Sent as `authorization: Bearer <apiKey>` on every call (PUSHGATE_API_KEYS on the server). */
  readonly apiKey?: string;
  /** Plaintext when absent or false: only for loopback or a trusted network. */
  readonly tls?: boolean | TlsOptions;
  /** Ready-made channel credentials; replaces `tls`. */
  readonly credentials?: ChannelCredentials;
  /**
   * Deadline of each unary call (all its retries included), in ms. Default 10000. A push's deadline
   * is at least its ack timeout plus 2 s, so a push that waits for acks is not cut short.
   */
  readonly deadlineMs?: number;
  /** Retries on UNAVAILABLE: for reads, pushToUser with a messageId, and reconnecting presence and receipt streams. */
  readonly retry?: RetryOptions;
  /** Extra grpc-js channel options (keepalive, message sizes, load balancing…). */
  readonly channelOptions?: ChannelOptions;
  /** Called before each retry or stream reconnect; for logs and metrics. */
  readonly onRetry?: (event: RetryEvent) => void;
}

/** What onRetry reports: the method, the failure, which retry this is and how long it waits first. */
export interface RetryEvent {
  readonly method: string;
  readonly error: Error;
  readonly attempt: number;
  readonly delayMs: number;
}

/** Per-call options. */
export interface CallOptions {
  /** Cancels the call (and any retry wait); the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Overrides the client's deadlineMs for this call. */
  readonly deadlineMs?: number;
  /** Extra metadata (e.g. `x-request-id`, which the server echoes into its logs). */
  readonly metadata?: Readonly<Record<string, string>>;
}

export const DEFAULT_DEADLINE_MS = 10_000;
/** Added to a push's ack timeout for the default deadline: the server answers just after the timeout. */
export const PUSH_DEADLINE_MARGIN_MS = 2000;

export function channelCredentials(options: PushgateClientOptions): ChannelCredentials {
  if (options.credentials !== undefined) return options.credentials;
  const tls = options.tls;
  if (tls === undefined || tls === false) return credentials.createInsecure();
  if (tls === true) return credentials.createSsl();
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError('tls.cert and tls.key go together: a client certificate needs its private key');
  }
  return credentials.createSsl(pem(tls.ca, 'tls.ca'), pem(tls.key, 'tls.key'), pem(tls.cert, 'tls.cert'));
}

export function channelOptionsOf(options: PushgateClientOptions, version: string): ChannelOptions {
  const tls = typeof options.tls === 'object' ? options.tls : undefined;
  return {
    'grpc.primary_user_agent': `pushgate-client/${version}`,
    // grpc-js backs off reconnecting up to 120 s by default: after a node restart, calls would fail
    // fast with UNAVAILABLE for minutes. 5 s matches the longest retry backoff.
    'grpc.max_reconnect_backoff_ms': 5000,
    ...(tls?.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName }),
    ...options.channelOptions,
  };
}

function pem(value: Pem | undefined, name: string): Buffer | null {
  if (value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (value.includes('-----BEGIN')) return Buffer.from(value);
  try {
    return readFileSync(value);
  } catch (err) {
    throw new TypeError(`${name}: cannot read PEM file ${value}: ${(err as Error).message}`, { cause: err });
  }
}

export function positiveMs(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number of milliseconds, got ${value}`);
  return value;
}
