/**
 * A caller process: PushToUser at a steady rate (open loop: a slow answer does not slow the
 * sending, as real backends do not wait for each other), logging the ledger's caller side. Each
 * push carries a message id and the user's next sequence number, in the data too, so clients can
 * log what they got. Driven over IPC by caller.ts.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { serve } from '../../bench/lib/children.js';
import { DeliveryMode } from '../../src/gen/pushgate/v1/inbox.js';
import { DeliveryStatus, PushServiceClient, PushToUserRequest, type PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import type { CallRecord, ResultStatus } from './ledger.js';

const STATUS: Record<number, ResultStatus> = {
  [DeliveryStatus.DELIVERY_STATUS_ACKED]: 'acked',
  [DeliveryStatus.DELIVERY_STATUS_TIMEOUT]: 'timeout',
  [DeliveryStatus.DELIVERY_STATUS_DISCONNECTED]: 'disconnected',
  [DeliveryStatus.DELIVERY_STATUS_SENT]: 'sent',
  [DeliveryStatus.DELIVERY_STATUS_FAILED]: 'failed',
  [DeliveryStatus.DELIVERY_STATUS_PENDING]: 'pending',
};

const clients = new Map<string, PushServiceClient>();
const seqs = new Map<string, number>();
let done: CallRecord[] = [];
let inFlight = new Set<CallRecord>();
let counter = 0;
const prefix = `m${process.pid}-`;

function clientFor(address: string): PushServiceClient {
  let client = clients.get(address);
  if (client === undefined) {
    client = new PushServiceClient(address, credentials.createInsecure());
    clients.set(address, client);
  }
  return client;
}

interface PushPlan {
  readonly addresses: string[];
  readonly users: string[];
  readonly ratePerSec: number;
  readonly durationMs: number;
  readonly mode: CallRecord['mode'];
  readonly ackTimeoutMs: number;
  readonly deadlineMs: number;
}

function pushOne(plan: PushPlan, i: number): Promise<void> {
  const userId = plan.users[i % plan.users.length]!;
  const seq = (seqs.get(userId) ?? 0) + 1;
  seqs.set(userId, seq);
  const messageId = `${prefix}${++counter}`;
  const call: CallRecord = {
    messageId,
    userId,
    seq,
    mode: plan.mode,
    startedMs: Date.now(),
    deadlineMs: plan.deadlineMs,
    results: [],
  };
  inFlight.add(call);
  const client = clientFor(plan.addresses[i % plan.addresses.length]!);
  const request = PushToUserRequest.fromPartial({
    userId,
    event: 'notice',
    data: { to: userId, seq },
    messageId,
    ackTimeoutMs: plan.ackTimeoutMs,
    deliveryMode: plan.mode === 'live' ? DeliveryMode.DELIVERY_MODE_LIVE : DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
  });
  return new Promise<void>((resolve) => {
    client.pushToUser(
      request,
      new Metadata(),
      { deadline: Date.now() + plan.deadlineMs },
      (err: ServiceError | null, response?: PushToUserResponse) => {
        call.endedMs = Date.now();
        call.code = err ? err.code : 0;
        if (response !== undefined) {
          call.stored = response.stored;
          call.results = response.deliveries.map((d) => ({ sessionId: d.session?.sessionId ?? '', status: STATUS[d.status] ?? 'unknown' }));
        }
        inFlight.delete(call);
        done.push(call);
        resolve();
      },
    );
  });
}

serve({
  /** Pushes at `ratePerSec` for `durationMs` to the users in turn; answers when every call has ended. */
  async push(body) {
    const plan = body as unknown as PushPlan;
    const count = Math.round((plan.ratePerSec * plan.durationMs) / 1000);
    const started = performance.now();
    const calls: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const wait = started + (i * 1000) / plan.ratePerSec - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      calls.push(pushOne(plan, i));
    }
    const sentMs = performance.now() - started;
    await Promise.all(calls);
    return { calls: count, sentMs, ms: performance.now() - started };
  },
  /** Hands over the calls that ended since the last drain; with `all`, the ones still open too (a hang). */
  drain(body) {
    const out = body.all === true ? [...done, ...inFlight] : done;
    done = [];
    if (body.all === true) inFlight = new Set();
    return { calls: out };
  },
});
process.send!({ op: 'ready', pid: process.pid });
