import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { AddressLimits } from './address-limits.js';
import type { ClientAddresses } from './client-address.js';
import type { OriginPolicy } from './origin-policy.js';
import type { RefusalLog } from './refusal-log.js';

export interface EngineAdmissionDeps {
  readonly origins: OriginPolicy;
  readonly addresses: ClientAddresses;
  readonly addressLimits: AddressLimits;
  readonly refusals: RefusalLog;
  readonly logger: Logger;
}

type AllowRequest = (request: IncomingMessage, answer: (message: string | null, success: boolean) => void) => void;

/**
 * engine.io's `allowRequest`, run on every new connection (the first request of long-polling, or
 * a websocket opened directly) before anything is allocated for it: the origin check, then the
 * per-address backstop. A refusal is HTTP 403 for polling and a refused upgrade for websockets,
 * with the reason as the body; it is logged like a refused Socket.IO handshake.
 */
export function engineAdmission(deps: EngineAdmissionDeps): AllowRequest {
  const { origins, addresses, addressLimits, refusals, logger } = deps;
  return (request, answer) => {
    const originRefusal = origins.check(request);
    if (originRefusal !== undefined) {
      refusals.refused(originRefusal.code, addresses.of(request), originRefusal.message);
      answer(originRefusal.message, false);
      return;
    }
    if (!addressLimits.enabled) {
      answer(null, true);
      return;
    }
    const address = addresses.of(request);
    addressLimits.admitConnection(address).then(
      (refusal) => {
        if (refusal === undefined) return answer(null, true);
        refusals.refused(refusal.code, address, refusal.message);
        answer(refusal.message, false);
      },
      (err: unknown) => {
        // The limiter is this node's memory: a failure is a fault, not the client's doing.
        logger.error({ err }, 'per-address check failed; connection admitted');
        answer(null, true);
      },
    );
  };
}
