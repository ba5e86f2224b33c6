import { type CallOptions, type ClientReadableStream, Metadata, type ServiceError } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import {
  type BatchSummary,
  type PushServiceClient,
  PushToUsersRequest,
  type PushToUsersResponse,
  type UserPushResult,
} from '../../src/gen/pushgate/v1/push_service.js';

/** One PushToUsers stream as a test reads it: each message with the ms since the call began. */
export interface BatchCall {
  readonly call: ClientReadableStream<PushToUsersResponse>;
  /** Every user result so far, in arrival order. */
  readonly results: { readonly result: UserPushResult; readonly atMs: number }[];
  /** User results per message received, in order (all 1 unless the request set max_results_per_message). */
  readonly perMessage: number[];
  /** Resolves with the summary and when it came; rejects with the stream's error. */
  readonly done: Promise<{ readonly summary: BatchSummary | undefined; readonly atMs: number; readonly afterSummary: number }>;
}

/** Starts a PushToUsers call on a raw client and collects what it streams. */
export function pushToUsers(raw: PushServiceClient, request: Partial<PushToUsersRequest>, options: Partial<CallOptions> = {}): BatchCall {
  const started = performance.now();
  const call = raw.pushToUsers(PushToUsersRequest.fromPartial(request), new Metadata(), options);
  const results: BatchCall['results'] = [];
  const perMessage: number[] = [];
  let summary: BatchSummary | undefined;
  let summaryAt = 0;
  let afterSummary = 0;
  const done = new Promise<{ summary: BatchSummary | undefined; atMs: number; afterSummary: number }>((resolve, reject) => {
    call.on('data', (message: PushToUsersResponse) => {
      const atMs = performance.now() - started;
      if (summary !== undefined) afterSummary++;
      const users = message.userResult === undefined ? message.userResults : [message.userResult];
      for (const result of users) results.push({ result, atMs });
      if (users.length > 0) perMessage.push(users.length);
      if (message.summary !== undefined) {
        summary = message.summary;
        summaryAt = atMs;
      }
    });
    call.on('error', (err: ServiceError) => reject(err));
    call.on('end', () => resolve({ summary, atMs: summaryAt, afterSummary }));
  });
  done.catch(() => undefined);
  return { call, results, perMessage, done };
}

/** The count of a histogram's (or counter's) series with these labels in a node's metrics registry; 0 when absent. */
export async function metricCount(registry: Registry, name: string, labels: Readonly<Record<string, string>>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  let total = 0;
  for (const value of values) {
    const suffix = (value as { metricName?: string }).metricName;
    if (suffix !== undefined && suffix !== `${name}_count` && suffix !== name) continue;
    if (Object.entries(labels).every(([key, wanted]) => String(value.labels[key]) === wanted)) total += value.value;
  }
  return total;
}
