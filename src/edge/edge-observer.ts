import type { Logger } from 'pino';
import type { DisconnectReason } from '../domain/presence.js';
import type { ErrorCode } from '../errors.js';
import { RefusalLog } from './refusal-log.js';

/** Watches sessions come and go; each call must be cheap and must not throw. */
export interface EdgeObserver {
  connected(clientType: string): void;
  /** With the presence reason the session ended with. */
  disconnected(reason: DisconnectReason): void;
  /** A connection refused at engine.io admission or at the handshake, by error code. */
  refused(code: ErrorCode): void;
}

export const NO_OBSERVER: EdgeObserver = { connected: () => undefined, disconnected: () => undefined, refused: () => undefined };

/** The refusal audit log, also telling the observer: engine admission and the handshake both refuse through it. */
export class ObservedRefusalLog extends RefusalLog {
  constructor(
    logger: Logger,
    private readonly observer: EdgeObserver,
  ) {
    super(logger);
  }

  override refused(code: ErrorCode, address: string, reason: string): void {
    this.observer.refused(code);
    super.refused(code, address, reason);
  }
}
