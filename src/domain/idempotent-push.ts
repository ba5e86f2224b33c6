import { PushgateError } from '../errors.js';
import { untilAborted } from './abortable.js';
import type { Cancellation } from './cancellation.js';
import type { IdempotencyStore } from './idempotency.js';
import type { PushRequest, PushResult } from './push.js';

/** A first call holds its message id this long past its ack timeout, in case its node dies mid-push. */
const LEASE_GRACE_MS = 5000;

/** What a remembered result is stored as: the push it answered (to refuse a reused id) and the result. */
interface Remembered {
  readonly userId: string;
  readonly event: string;
  readonly clientTypes: readonly string[];
  readonly result: PushResult;
}

/**
 * Pushes with the caller's own message id are delivered once per PUSHGATE_IDEMPOTENCY_WINDOW_S: a
 * repeat returns the first call's result (marked `duplicate`), and one arriving while the first
 * still waits for acks waits for it, on whichever node either runs. A first call that fails as a
 * whole (registry unreachable, cancelled before anything was sent) lets a retry run again.
 */
export class IdempotentPushes {
  constructor(
    private readonly deps: {
      readonly store: IdempotencyStore;
      readonly windowMs: number;
      /** A result that could not be remembered (the store is unreachable): a retry would deliver again. */
      readonly onStoreError: (err: unknown) => void;
    },
  ) {}

  async run(request: PushRequest, signal: Cancellation, push: () => Promise<PushResult>): Promise<PushResult> {
    const { store, windowMs } = this.deps;
    const key = request.messageId;
    for (;;) {
      const claim = await untilAborted(store.claim(key, request.ackTimeoutMs + LEASE_GRACE_MS), signal);
      if (claim.kind === 'first') {
        let result: PushResult;
        try {
          result = await push();
        } catch (err) {
          await store.release(key, claim.token).catch(this.deps.onStoreError);
          throw err;
        }
        const remembered: Remembered = { userId: request.userId, event: request.event, clientTypes: request.clientTypes, result };
        // Not awaited: a repeat arriving before it lands finds the key running and waits for it.
        store.complete(key, claim.token, JSON.stringify(remembered), windowMs).catch(this.deps.onStoreError);
        return result;
      }
      const stored = claim.kind === 'done' ? claim.result : await store.waitFor(key, signal);
      // Released, or its node died past the lease: this call runs the push itself.
      if (stored !== undefined) return repeated(request, JSON.parse(stored) as Remembered);
    }
  }
}

function repeated(request: PushRequest, remembered: Remembered): PushResult {
  const sameTypes = remembered.clientTypes.join('\n') === request.clientTypes.join('\n');
  if (remembered.userId !== request.userId || remembered.event !== request.event || !sameTypes) {
    throw new PushgateError(
      'message_id_reused',
      `message_id "${request.messageId.slice(0, 64)}" was already used for another push (user, event or client_types differ) within PUSHGATE_IDEMPOTENCY_WINDOW_S; use a new message_id`,
    );
  }
  return { ...remembered.result, duplicate: true };
}
