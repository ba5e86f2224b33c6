import { readFileSync } from 'node:fs';
import type { ServiceError } from '@grpc/grpc-js';
import { type BatchSummary, PushToUsersRequest, type PushToUsersResponse, type UserPushResult } from '../gen/pushgate/v1/push_service.js';
import type { NodeApi } from './connection.js';
import { usageError } from './exit-codes.js';
import { cell, DELIVERY_COLUMNS, deliveryJson, deliveryRow, plural, table } from './output.js';

/** `push` with more than one user: PushToUsers, one table row per session (or JSON lines as results come). */

/** The users of `--user` (repeated) and `--users-file` (one id per line; blank lines skipped), in order. */
export function usersOf(flagged: readonly string[], file: string | undefined): string[] {
  if (file === undefined) return [...flagged];
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (err) {
    throw usageError(`--users-file: cannot read ${file}: ${(err as Error).message}`);
  }
  return [...flagged, ...text.split(/\r?\n/).filter((line) => line.trim() !== '')];
}

const RESULTS_PER_MESSAGE = 100;

/** Streams a batch push; JSON lines are printed as each user's result arrives, the table once all have. */
export function pushBatch(
  api: NodeApi,
  request: Partial<PushToUsersRequest>,
  deadlineMs: number,
  json: boolean,
  ack: boolean,
): Promise<void> {
  // Results that complete together come in one message: a big batch costs the node less per user.
  const packed = PushToUsersRequest.fromPartial({ ...request, maxResultsPerMessage: RESULTS_PER_MESSAGE });
  const call = api.client.pushToUsers(packed, api.metadata(), { deadline: Date.now() + deadlineMs });
  const results: UserPushResult[] = [];
  let summary: BatchSummary | undefined;
  return new Promise<void>((resolve, reject) => {
    call.on('data', (message: PushToUsersResponse) => {
      for (const result of message.userResult === undefined ? message.userResults : [message.userResult]) {
        if (json) process.stdout.write(`${JSON.stringify(userResultJson(result))}\n`);
        else results.push(result);
      }
      if (message.summary !== undefined) {
        summary = message.summary;
        if (json) process.stdout.write(`${JSON.stringify({ summary })}\n`);
      }
    });
    call.on('error', (err: ServiceError) => reject(err));
    call.on('end', () => {
      if (!json && summary !== undefined) process.stdout.write(batchReport(results, summary, ack));
      resolve();
    });
  });
}

function batchReport(results: readonly UserPushResult[], summary: BatchSummary, ack: boolean): string {
  const rows = results.flatMap((result) =>
    result.deliveries.length === 0
      ? [[cell(result.userId, 32), '', '', '', result.stored ? 'NO SESSION (STORED)' : 'NO SESSION', '', '']]
      : result.deliveries.map((d) => [cell(result.userId, 32), ...deliveryRow(d)]),
  );
  const counts = ack
    ? `${summary.acked} acked, ${summary.timedOut} timed out, ${summary.failed} failed`
    : `${summary.sent} sent, ${summary.failed} failed`;
  // Only a storing push can store: a live one's line stays as it always was.
  const stored = summary.stored > 0 ? `; ${plural(summary.stored, 'user')} stored in the inbox until acked` : '';
  const line =
    `message ${summary.messageId} to ${plural(summary.users, 'user')} (${summary.usersWithoutSessions} without a live session): ` +
    `${plural(summary.sessions, 'session')}, ${counts}${stored}\n`;
  return table(['user', ...DELIVERY_COLUMNS], rows) + line;
}

function userResultJson(result: UserPushResult): unknown {
  return {
    userId: result.userId,
    messageId: result.messageId,
    acked: result.acked,
    timedOut: result.timedOut,
    failed: result.failed,
    stored: result.stored,
    deliveries: result.deliveries.map(deliveryJson),
  };
}
