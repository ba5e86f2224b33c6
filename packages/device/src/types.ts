import type { DeviceError } from './core.js';

/**
 * The types of @pushgate/device. Type declarations only: core.ts imports them with `import type`,
 * so the browser file (dist/core.js) loads nothing else at run time.
 */

/** What the node tells about each pushed event (the `meta` argument, sent to clients that opt in). */
export interface Meta {
  /** The push's message id: the same on every delivery and replay of one push. */
  readonly messageId: string;
  /** When the push was made, epoch ms (not when this copy was sent). */
  readonly sentAt: number;
  /** True when the event comes from the offline inbox, replayed as the connection opened. */
  readonly replay: boolean;
  /** 1 for the first delivery, counting up on each redelivery. */
  readonly attempt: number;
}

/**
 * Handles one pushed event. Once it resolves the library acks the event, with the value it
 * returned as ack data (none when undefined). When it throws or rejects the event is not acked:
 * the node keeps a stored message in the inbox and replays it on a later connection.
 */
export type Handler<T> = (data: T, meta: Meta) => unknown;

/**
 * Reconnection with exponential backoff and jitter: Socket.IO's own options, passed to it, and used
 * the same way for the reconnects Socket.IO leaves to the application (after a refusal or a close by the node).
 */
export interface ReconnectOptions {
  /** First delay, ms. Default 1000. */
  readonly reconnectionDelay?: number;
  /** Longest delay, ms. Default 5000. */
  readonly reconnectionDelayMax?: number;
  /** 0..1: how far each delay is randomised either way. Default 0.5. */
  readonly randomizationFactor?: number;
  /** Attempts in a row before giving up (the client closes with `reconnect_failed`). Default: no limit. */
  readonly reconnectionAttempts?: number;
}

/** A Socket.IO ack callback. */
export type Ack = (...reply: unknown[]) => void;
export type Listener<V> = (value: V) => void;
/** What the node answers to `pushgate:refresh` (src/edge/token-expiry.ts RefreshAnswer). */
export type RefreshAnswer = { ok?: boolean; code?: string; message?: string } | undefined;
/** Socket.IO's `auth` option as a function: called with a callback at every (re)connect. */
export type AuthCallback = (data: Record<string, unknown>) => void;

/** The minimum of a socket.io-client v4 Socket this library uses. */
export interface SocketLike {
  readonly id: string | undefined;
  readonly connected: boolean;
  /** False once a middleware refused the connection or the socket was closed: Socket.IO will not retry on its own. */
  readonly active: boolean;
  readonly io: { on(event: 'reconnect_failed', listener: () => void): unknown };
  // biome-ignore lint/suspicious/noExplicitAny: Socket.IO listeners take any arguments.
  on(event: string, listener: (...args: any[]) => void): unknown;
  // biome-ignore lint/suspicious/noExplicitAny: as on().
  off(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: unknown[]): unknown;
  timeout(ms: number): { emitWithAck(event: string, ...args: unknown[]): Promise<unknown> };
  connect(): unknown;
  disconnect(): unknown;
}

/** The options this library hands to `io()`. */
export interface IoOptions {
  auth: (cb: AuthCallback) => void;
  path?: string;
  reconnection: boolean;
  reconnectionDelay: number;
  reconnectionDelayMax: number;
  randomizationFactor: number;
  reconnectionAttempts: number;
  forceNew: boolean;
  [option: string]: unknown;
}

/** socket.io-client's `io` (in a browser, the global one the node serves at /socket.io/socket.io.js). */
export type IoFunction = (url: string, options: IoOptions) => SocketLike;

export interface DeviceOptions {
  /** The node's HTTP address, e.g. `https://push.example.com`; in a page served by the node, `location.origin`. */
  readonly url: string;
  /** A client token (JWT), or a function that fetches a fresh one: called on every (re)connect and for each refresh. */
  readonly token: string | (() => Promise<string> | string);
  /** One of the node's PUSHGATE_CLIENT_TYPES (e.g. `web`, `app`, `pc`). */
  readonly clientType: string;
  /** socket.io-client's `io`. In core.js it defaults to the global `io` of /socket.io/socket.io.js; index.js passes the package's. */
  readonly io?: IoFunction;
  /** The Socket.IO path on the node. Default `/socket.io`. */
  readonly path?: string;
  readonly reconnect?: ReconnectOptions;
  /** How many handled message ids to remember for de-duplication. Default 1000. */
  readonly dedupeWindow?: number;
  /** With a token function and a JWT carrying `exp`: refresh this long before exp, ms. Default 60000. */
  readonly refreshBeforeExpiryMs?: number;
  /** Longest wait for the node's answer to a refresh, ms. Default 10000. */
  readonly refreshTimeoutMs?: number;
  /** More socket.io-client options (`transports`, `extraHeaders`, …). Those the library sets win. */
  readonly socketOptions?: Record<string, unknown>;
}

/** What a DeviceError is about. */
export interface DeviceErrorDetails {
  /** The event and message concerned (handler_failed). */
  readonly event?: string;
  readonly messageId?: string;
  /** The node's error code (connect_refused, refresh_failed), e.g. `registry_unavailable`. */
  readonly serverCode?: string;
  readonly cause?: unknown;
}

/** Why the client reports an error; none of these closes it. */
export type DeviceErrorCode =
  /** A handler threw or rejected: the event was not acked (a stored message is replayed later). */
  | 'handler_failed'
  /** The token function threw or rejected. */
  | 'token_failed'
  /** The node refused or did not answer a `pushgate:refresh`; it closes the socket at exp unless a later refresh works. */
  | 'refresh_failed'
  /** The node refused the connection for a reason worth retrying (draining, Redis down, a limit): retried with backoff. */
  | 'connect_refused';

export type DeviceStatus =
  | { readonly type: 'connected'; readonly sessionId: string }
  | {
      readonly type: 'disconnected';
      /** The node's notice (`server_shutdown`, `token_expired`, `kicked`, …) if it sent one, else Socket.IO's reason. */
      readonly reason: string;
      readonly willReconnect: boolean;
    };

/** Counts since connect(). */
export interface DeviceStats {
  /** Handler runs that resolved (and were acked). */
  readonly handled: number;
  /** Handler runs that threw or rejected. */
  readonly failed: number;
  /** Deliveries of a message id already handled or running: acked without running the handler again. */
  readonly duplicates: number;
  /** Deliveries with `meta.replay` (from the offline inbox). */
  readonly replayed: number;
}

export interface DeviceClient<Events extends Record<string, unknown>> {
  /** Handles a pushed event: one handler per event name. Returns a function that removes it. */
  on<K extends keyof Events & string>(event: K, handler: Handler<Events[K]>): () => void;
  onStatus(listener: (status: DeviceStatus) => void): () => void;
  onError(listener: (error: DeviceError) => void): () => void;
  /** Called once when the client stops for good: `client_closed` (close()), a final notice or refusal code, `reconnect_failed`. */
  onClose(listener: (reason: string) => void): () => void;
  readonly connected: boolean;
  /** The current session id (the node's socket id) while connected. */
  readonly sessionId: string | undefined;
  readonly stats: DeviceStats;
  /** Disconnects and stops: no timer or socket is left, and no later ack is sent. */
  close(): void;
}
