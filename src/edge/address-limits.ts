import type { RateLimiter } from '../domain/rate-limiter.js';
import { PushgateError } from '../errors.js';

export interface AddressLimitOptions {
  /** PUSHGATE_MAX_CONNECTIONS_PER_IP; 0: off. */
  readonly maxConnections: number;
  /** PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S; 0: off. */
  readonly handshakesPerSecond: number;
  /** This node's limiter: the limits are per node. */
  readonly limiter: RateLimiter;
}

/** Open connections of one address, and how many of them have not authenticated yet. */
interface Counts {
  open: number;
  pending: number;
}

/** An engine.io connection as far as counting goes. */
export interface CountedConnection {
  once(event: 'close', listener: () => void): unknown;
}

/**
 * Per client address limits of this node, in two layers so that a client gets a clear code and a
 * flood costs little:
 *
 * - At the Socket.IO handshake (`admitSession`), where the client gets `connect_error` with
 *   `data.code`: `too_many_connections` when the address holds more than `maxConnections` open
 *   connections, `rate_limited` past `handshakesPerSecond`.
 * - At the engine.io handshake (`admitConnection`), before any Socket.IO state exists, as a
 *   backstop for clients that open connections and never send the Socket.IO handshake: an
 *   address may hold at most `maxConnections` unauthenticated connections, and open new ones at
 *   twice the handshake rate. Those refusals are plain HTTP (403, or a refused upgrade).
 *
 * So an address holds at most `maxConnections` sessions plus as many connections still
 * authenticating (each dropped at the handshake timeout).
 */
export class AddressLimits {
  private readonly counts = new Map<string, Counts>();
  private readonly authenticated = new WeakSet<CountedConnection>();
  private readonly sessionRate;
  private readonly connectionRate;

  constructor(private readonly options: AddressLimitOptions) {
    const perSecond = options.handshakesPerSecond;
    this.sessionRate = { perSecond, burst: Math.max(1, perSecond) };
    this.connectionRate = { perSecond: 2 * perSecond, burst: Math.max(1, 2 * perSecond) };
  }

  get enabled(): boolean {
    return this.options.maxConnections > 0 || this.options.handshakesPerSecond > 0;
  }

  /** Open connections of an address (for tests and metrics). */
  openConnections(address: string): number {
    return this.counts.get(address)?.open ?? 0;
  }

  /** Engine.io handshake: refuses (returns why) a new connection the address may not open. */
  async admitConnection(address: string): Promise<PushgateError | undefined> {
    const { maxConnections, handshakesPerSecond, limiter } = this.options;
    if (maxConnections > 0 && (this.counts.get(address)?.pending ?? 0) >= maxConnections) {
      return new PushgateError(
        'too_many_connections',
        `too_many_connections: this address already has ${maxConnections} connections that have not authenticated (PUSHGATE_MAX_CONNECTIONS_PER_IP)`,
      );
    }
    if (handshakesPerSecond > 0) {
      const retryMs = await limiter.consume(`edge-connection:${address}`, this.connectionRate);
      if (retryMs > 0) {
        return new PushgateError('rate_limited', `rate_limited: too many connections from this address; retry in ${retryMs} ms`, {
          details: { retry_after_ms: String(retryMs) },
        });
      }
    }
    return undefined;
  }

  /** Counts an engine.io connection of `address` from its opening to its close. */
  track(connection: CountedConnection, address: string): void {
    if (this.options.maxConnections === 0) return;
    let counts = this.counts.get(address);
    if (counts === undefined) {
      counts = { open: 0, pending: 0 };
      this.counts.set(address, counts);
    }
    counts.open++;
    counts.pending++;
    connection.once('close', () => {
      counts.open--;
      if (!this.authenticated.has(connection)) counts.pending--;
      if (counts.open === 0) this.counts.delete(address);
    });
  }

  /** Socket.IO handshake, before the token is checked: throws the refusal the client gets in `connect_error`. */
  async admitSession(address: string): Promise<void> {
    const { maxConnections, handshakesPerSecond, limiter } = this.options;
    const open = this.counts.get(address)?.open ?? 0;
    if (maxConnections > 0 && open > maxConnections) {
      throw new PushgateError(
        'too_many_connections',
        `this address already has ${maxConnections} connections to this node (PUSHGATE_MAX_CONNECTIONS_PER_IP)`,
      );
    }
    if (handshakesPerSecond > 0) {
      const retryMs = await limiter.consume(`edge-handshake:${address}`, this.sessionRate);
      if (retryMs > 0) {
        throw new PushgateError(
          'rate_limited',
          `more than ${handshakesPerSecond} handshakes a second from this address (PUSHGATE_MAX_HANDSHAKES_PER_IP_PER_S); retry in ${retryMs} ms`,
          { details: { retry_after_ms: String(retryMs) } },
        );
      }
    }
  }

  /** The connection authenticated: it no longer counts against the unauthenticated backstop. */
  authenticate(connection: CountedConnection, address: string): void {
    if (this.options.maxConnections === 0 || this.authenticated.has(connection)) return;
    const counts = this.counts.get(address);
    if (counts === undefined) return;
    this.authenticated.add(connection);
    counts.pending--;
  }
}
