import type { Logger } from 'pino';
import type { ClusterMode } from './cluster/cluster.js';
import type { Config } from './config/config.js';
import type { IdempotencyStore } from './domain/idempotency.js';
import { IdempotentPushes } from './domain/idempotent-push.js';
import { InboxService } from './domain/inbox-service.js';
import { ReceiptService } from './domain/receipt-service.js';
import type { ReceiptStore } from './domain/receipts.js';
import { MemoryIdempotencyStore } from './idempotency/memory-idempotency.js';
import { MemoryInbox } from './inbox/memory-inbox.js';
import { inboxMetrics } from './metrics/inbox-metrics.js';
import { MemoryReceiptStore } from './receipts/memory-receipts.js';

/** One node's delivery guarantees (issue 12): the offline inbox, receipts, idempotent pushes. */
export interface DeliveryGuarantees {
  readonly inbox: InboxService;
  readonly receipts: ReceiptService;
  /** Undefined when PUSHGATE_IDEMPOTENCY_WINDOW_S is 0. */
  readonly idempotent: IdempotentPushes | undefined;
  /** Stops the expiry sweeps and closes what this node alone holds (memory stores). */
  close(): Promise<void>;
}

/**
 * Wires the delivery guarantees on the cluster's Redis stores, or (one node) on memory stores
 * that are bounded and lost on restart. Failures off the call path are counted and logged.
 */
export function deliveryGuarantees(
  config: Config,
  cluster: ClusterMode | undefined,
  metrics: Parameters<typeof inboxMetrics>[0],
  log: Logger,
): DeliveryGuarantees {
  const { inbox: settings, presence } = config;
  const receiptStore: ReceiptStore =
    cluster?.receipts ??
    new MemoryReceiptStore({
      retention: presence.retention,
      retentionMs: presence.retentionMs,
      onListenerError: (err) => log.error({ err }, 'receipt listener failed'),
    });
  const idempotencyStore: IdempotencyStore = cluster?.idempotency ?? new MemoryIdempotencyStore({ maxKeys: settings.idempotencyMaxKeys });
  const receipts = new ReceiptService({ store: receiptStore, retentionMs: settings.receiptRetentionS * 1000 });
  const inbox = new InboxService({
    inbox: cluster?.inbox ?? new MemoryInbox({ maxTotalMessages: settings.maxTotalMessages }),
    settings,
    clientTypes: config.edge.clientTypes,
    replayAckTimeoutMs: config.push.ackTimeoutMs,
    receipts,
    observer: inboxMetrics(metrics, (operation, err) =>
      log.warn({ operation, reason: (err as Error).message }, 'offline inbox or receipt operation failed; it is retried later'),
    ),
  });
  const idempotent =
    settings.idempotencyWindowS === 0
      ? undefined
      : new IdempotentPushes({
          store: idempotencyStore,
          windowMs: settings.idempotencyWindowS * 1000,
          onStoreError: (err) =>
            log.warn(
              { reason: (err as Error).message },
              'a push result could not be remembered for idempotency; a retry would deliver again',
            ),
        });
  return {
    inbox,
    receipts,
    idempotent,
    async close() {
      inbox.close();
      if (cluster === undefined) await Promise.all([receiptStore.close(), idempotencyStore.close()]);
    },
  };
}
