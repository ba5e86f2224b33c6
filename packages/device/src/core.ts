import type * as T from './types.js';

// The browser build: this file loads nothing at run time (the import above is erased), so a page
// can take it as it is from the node (`/device.js`) next to `/socket.io/socket.io.js`.
export type * from './types.js';

/** The node's own events (src/domain/events.ts). */
const DISCONNECT_NOTICE_EVENT = 'pushgate:disconnect';
const TOKEN_REFRESH_EVENT = 'pushgate:refresh';
/** Names a handler may not take: Socket.IO's own and pushgate's. */
const RESERVED = /^(connect|connect_error|disconnect|disconnecting|newListener|removeListener|pushgate:.*)$/;
/** Refusal codes that a retry cannot fix: the same token and client type would be refused again. */
const FINAL_REFUSAL = /^(token_|client_type_)/;
/** Socket.IO's reconnection defaults, but for a shorter longest delay. */
const BACKOFF = { reconnectionDelay: 1000, reconnectionDelayMax: 5000, randomizationFactor: 0.5, reconnectionAttempts: Infinity };
/** setTimeout fires at once beyond this (2^31 - 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2_147_483_647;

/** Why a device client reports a problem; see DeviceErrorCode. None of these closes the client. */
export class DeviceError extends Error {
  override readonly name = 'DeviceError';
  constructor(
    readonly code: T.DeviceErrorCode,
    message: string,
    readonly details: T.DeviceErrorDetails = {},
  ) {
    super(message, { cause: details.cause });
  }
}

/**
 * Message ids handled lately (with their ack value, to ack a redelivery the same way), the oldest
 * forgotten past `window`; and those whose handler is running, with the acks waiting for it.
 */
class Dedupe {
  private readonly done = new Map<string, unknown>();
  private readonly running = new Map<string, T.Ack[]>();

  constructor(private readonly window: number) {}

  /** True when `id` was seen (a handled one is acked now, a running one when it resolves); else it is now running. */
  claim(id: string, ack: T.Ack): boolean {
    if (this.done.has(id)) ack(this.done.get(id));
    else if (this.running.has(id)) this.running.get(id)!.push(ack);
    else return !this.running.set(id, [ack]);
    return true;
  }

  /** The handler resolved (`ok`): acks all who wait. Or it failed: nobody is acked, and a later delivery runs it again. */
  finish(id: string, ok: boolean, value?: unknown): void {
    const waiting = this.running.get(id) ?? [];
    this.running.delete(id);
    if (!ok) return;
    this.done.set(id, value);
    if (this.done.size > this.window) this.done.delete(this.done.keys().next().value!);
    for (const ack of waiting) ack(value);
  }
}

/** Opens a device connection to a pushgate node. In a browser without a bundler, `io` defaults to the page's global. */
export function connect<E extends Record<string, unknown> = Record<string, unknown>>(options: T.DeviceOptions): T.DeviceClient<E> {
  return new Device<E>(options);
}

class Device<Events extends Record<string, unknown>> implements T.DeviceClient<Events> {
  private readonly socket: T.SocketLike;
  private readonly dedupe: Dedupe;
  private readonly backoff: Required<T.ReconnectOptions>;
  private readonly handlers = new Map<string, (...args: unknown[]) => void>();
  private readonly statusListeners = new Set<T.Listener<T.DeviceStatus>>();
  private readonly errorListeners = new Set<T.Listener<DeviceError>>();
  private readonly closeListeners = new Set<T.Listener<string>>();
  private readonly counts = { handled: 0, failed: 0, duplicates: 0, replayed: 0 };
  private closed = false;
  /** Counts connections: an ack goes only on the connection its event came on. */
  private generation = 0;
  private token: string | undefined;
  /** The token function failed for the connection being opened: its refusal (no token) is worth a retry. */
  private tokenFailed = false;
  private notice: string | undefined;
  private attempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly options: T.DeviceOptions) {
    const io = options.io ?? (globalThis as { io?: T.IoFunction }).io;
    if (typeof io !== 'function') throw new TypeError('no socket.io-client: pass `io`, or load /socket.io/socket.io.js first');
    this.dedupe = new Dedupe(options.dedupeWindow ?? 1000);
    this.backoff = { ...BACKOFF, ...options.reconnect };
    // forceNew: a connection of its own, whose auth and ack ids are not shared with another client's.
    const settings = { ...this.backoff, auth: (cb: T.AuthCallback) => this.authenticate(cb), reconnection: true, forceNew: true };
    this.socket = io(options.url, { ...options.socketOptions, ...(options.path !== undefined && { path: options.path }), ...settings });
    this.socket.on('connect', () => this.opened());
    this.socket.on('disconnect', (reason: string) => this.disconnected(reason));
    this.socket.on('connect_error', (err: Error & { data?: { code?: string } }) => this.refused(err));
    this.socket.on(DISCONNECT_NOTICE_EVENT, (notice: { reason?: unknown } | undefined) => {
      if (typeof notice?.reason === 'string') this.notice = notice.reason;
    });
    this.socket.io.on('reconnect_failed', () => this.stop('reconnect_failed'));
  }

  get connected(): boolean {
    return this.socket.connected;
  }
  get sessionId(): string | undefined {
    return this.socket.connected ? this.socket.id : undefined;
  }
  get stats(): T.DeviceStats {
    return { ...this.counts };
  }

  on<K extends keyof Events & string>(event: K, handler: T.Handler<Events[K]>): () => void {
    if (RESERVED.test(event)) throw new TypeError(`"${event}" is not a pushed event name`);
    if (this.handlers.has(event)) throw new TypeError(`"${event}" already has a handler`);
    const listener = (...args: unknown[]) => this.deliver(event, handler as T.Handler<unknown>, args);
    this.handlers.set(event, listener);
    this.socket.on(event, listener);
    return () => {
      if (this.handlers.get(event) === listener && this.handlers.delete(event)) this.socket.off(event, listener);
    };
  }

  onStatus(listener: T.Listener<T.DeviceStatus>): () => void {
    return subscribe(this.statusListeners, listener);
  }
  onError(listener: T.Listener<DeviceError>): () => void {
    return subscribe(this.errorListeners, listener);
  }
  onClose(listener: T.Listener<string>): () => void {
    return subscribe(this.closeListeners, listener);
  }

  close(): void {
    this.stop('client_closed');
  }

  private async deliver(event: string, handler: T.Handler<unknown>, args: unknown[]): Promise<void> {
    const socketAck = typeof args[args.length - 1] === 'function' ? (args.pop() as T.Ack) : undefined;
    const generation = this.generation;
    const ack: T.Ack = (value) => {
      // The node's socket that asked for it is gone with its connection: a stored message is
      // replayed on the new one and acked from `dedupe`.
      if (socketAck === undefined || this.closed || generation !== this.generation || !this.socket.connected) return;
      if (value === undefined) socketAck();
      else socketAck(value);
    };
    const meta = metaOf(args[1]);
    if (meta?.replay) this.counts.replayed++;
    if (meta !== undefined && this.dedupe.claim(meta.messageId, ack)) {
      this.counts.duplicates++;
      return;
    }
    try {
      // Called before the first await, so handlers start in arrival order. A node that ignores the
      // opt-in sends no meta: then there is no de-duplication either.
      const value = await handler(args[0], meta ?? { messageId: '', sentAt: Date.now(), replay: false, attempt: 1 });
      this.counts.handled++;
      if (meta === undefined) ack(value);
      else this.dedupe.finish(meta.messageId, true, value);
    } catch (err) {
      this.counts.failed++;
      if (meta !== undefined) this.dedupe.finish(meta.messageId, false);
      const why = `the "${event}" handler failed: ${err instanceof Error ? err.message : String(err)}`;
      notify(this.errorListeners, new DeviceError('handler_failed', why, { event, messageId: meta?.messageId, cause: err }));
    }
  }

  /** Socket.IO's `auth` callback: runs at every (re)connect, so a token function is asked each time. */
  private async authenticate(cb: T.AuthCallback): Promise<void> {
    const { token, clientType } = this.options;
    this.tokenFailed = false;
    try {
      this.token = typeof token === 'string' ? token : await token();
    } catch (err) {
      this.tokenFailed = true;
      notify(this.errorListeners, new DeviceError('token_failed', `the token function failed: ${String(err)}`, { cause: err }));
    }
    // Without a token the node refuses the connection (token_missing), and `refused` retries with backoff.
    cb({ clientType, meta: true, ...(!this.tokenFailed && { token: this.token }) });
  }

  private opened(): void {
    this.generation++;
    this.attempts = 0;
    this.notice = undefined;
    notify(this.statusListeners, { type: 'connected', sessionId: this.socket.id ?? '' });
    this.scheduleRefresh();
  }

  private disconnected(socketReason: string): void {
    this.clearRefresh();
    if (this.closed) return;
    const notice = this.notice;
    this.notice = undefined;
    // The node closed this session on purpose (kicked, evicted, a backend's own reason): coming
    // back would undo that. A shutdown sends the client to another node; an expired token is
    // replaced by the token function (a fixed token would only be refused).
    const final =
      notice !== undefined && notice !== 'server_shutdown' && !(notice === 'token_expired' && typeof this.options.token === 'function');
    // After the node closed the namespace, Socket.IO does not reconnect on its own.
    if (!final && socketReason === 'io server disconnect') this.scheduleReconnect();
    notify(this.statusListeners, { type: 'disconnected', reason: notice ?? socketReason, willReconnect: !final && !this.closed });
    if (final) this.stop(notice);
  }

  private refused(err: Error & { data?: { code?: string } }): void {
    // Still active: the transport failed, and Socket.IO retries with its own backoff.
    if (this.closed || this.socket.active) return;
    const code = err.data?.code ?? '';
    if (FINAL_REFUSAL.test(code) && !this.tokenFailed) return void this.stop(code);
    notify(this.errorListeners, new DeviceError('connect_refused', `the node refused: ${err.message}`, { serverCode: code }));
    this.scheduleReconnect();
  }

  /** For what Socket.IO leaves alone (a refusal by the node, a close by the node): the same backoff. */
  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const { reconnectionDelay, reconnectionDelayMax: max, randomizationFactor, reconnectionAttempts } = this.backoff;
    if (this.attempts >= reconnectionAttempts) return void this.stop('reconnect_failed');
    const base = Math.min(max, reconnectionDelay * 2 ** Math.min(this.attempts++, 30));
    const delay = Math.min(max, Math.max(0, base * (1 + randomizationFactor * (Math.random() * 2 - 1))));
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closed) this.socket.connect();
    }, delay);
  }

  /** With a token function: refreshes `refreshBeforeExpiryMs` before the JWT's exp (at half its remaining life when that is later). */
  private scheduleRefresh(): void {
    this.clearRefresh();
    const fetchToken = this.options.token;
    const left = (this.token === undefined ? Number.NaN : expiryOf(this.token)) - Date.now();
    if (this.closed || typeof fetchToken !== 'function' || !(left > 0)) return;
    const before = this.options.refreshBeforeExpiryMs ?? 60_000;
    const delay = left > before ? left - before : Math.max(left / 2, 1000);
    // Too late: the node closes at exp with token_expired, and the reconnect fetches a fresh one.
    // Past setTimeout's range a refresh simply comes early.
    if (delay < left) this.refreshTimer = setTimeout(() => this.refresh(fetchToken), Math.min(delay, MAX_TIMER_MS));
  }

  private async refresh(fetchToken: () => Promise<string> | string): Promise<void> {
    this.refreshTimer = undefined;
    const generation = this.generation;
    const current = () => !this.closed && generation === this.generation && this.socket.connected;
    try {
      const fresh = await fetchToken();
      if (!current()) return;
      const timeoutMs = this.options.refreshTimeoutMs ?? 10_000;
      const answer = (await this.socket.timeout(timeoutMs).emitWithAck(TOKEN_REFRESH_EVENT, fresh)) as T.RefreshAnswer;
      const why = `the node did not take the fresh token: ${answer?.message ?? 'no answer'}`;
      if (answer?.ok !== true) throw new DeviceError('refresh_failed', why, { serverCode: answer?.code });
      if (!current()) return;
      this.token = fresh;
    } catch (err) {
      if (!current()) return;
      // Tried again at half the remaining life each time, until exp closes the session.
      notify(this.errorListeners, err instanceof DeviceError ? err : new DeviceError('refresh_failed', String(err), { cause: err }));
    }
    this.scheduleRefresh();
  }

  private clearRefresh(): void {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
  }

  private stop(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.clearRefresh();
    clearTimeout(this.reconnectTimer);
    this.socket.disconnect();
    notify(this.closeListeners, reason);
  }
}

function subscribe<V>(listeners: Set<T.Listener<V>>, listener: T.Listener<V>): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify<V>(listeners: Set<T.Listener<V>>, value: V): void {
  for (const listener of [...listeners]) listener(value);
}

function metaOf(value: unknown): T.Meta | undefined {
  const meta = value as Partial<T.Meta> | null | undefined;
  return typeof meta?.messageId === 'string' && meta.messageId !== '' ? (meta as T.Meta) : undefined;
}

/** A JWT's exp in epoch ms, read without verifying (the node verifies); NaN for anything else. */
function expiryOf(token: string): number {
  try {
    const exp: unknown = JSON.parse(atob(token.split('.')[1]!.replace(/-/g, '+').replace(/_/g, '/'))).exp;
    return typeof exp === 'number' ? exp * 1000 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}
