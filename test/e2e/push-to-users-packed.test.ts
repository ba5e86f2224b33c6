import { type ServiceError, status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { UserPushResult } from '../../src/gen/pushgate/v1/push_service.js';
import { startNode, type TestNode } from '../support/node.js';
import { pushToUsers } from '../support/push-to-users.js';

/** What a backend keeps of a user's result: who, their message id, and each session's status. */
function outcome(result: UserPushResult): [string, string, number[], number] {
  return [result.userId, result.messageId, result.deliveries.map((d) => d.status), result.acked];
}

describe('PushToUsers max_results_per_message', () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode();
  });
  afterEach(async () => {
    await node.stop();
  });

  it('streams the same results and summary as one per message, several users to a message when they complete together', async () => {
    for (const userId of ['a', 'b', 'c']) {
      const socket = await node.connect(userId, 'web');
      socket.on('notice', (_data: unknown, ack: (reply: unknown) => void) => ack({ by: userId }));
    }
    // 3 users with a session and 120 without: those 120 complete at once, before any ack.
    const userIds = ['a', 'b', 'c', ...Array.from({ length: 120 }, (_, i) => `offline-${i}`)];
    const request = { userIds, event: 'notice', data: { n: 1 }, messageId: 'batch-1' };

    const single = pushToUsers(node.client.raw, request);
    const singleEnd = await single.done;
    const packed = pushToUsers(node.client.raw, { ...request, maxResultsPerMessage: 50 });
    const packedEnd = await packed.done;

    const sorted = (results: { result: UserPushResult }[]) => results.map((r) => outcome(r.result)).sort();
    expect(sorted(packed.results)).toEqual(sorted(single.results));
    expect(packed.results).toHaveLength(123);
    expect(packedEnd.summary).toEqual(singleEnd.summary);
    expect(packedEnd.afterSummary).toBe(0);
    expect(single.perMessage.every((n) => n === 1)).toBe(true);
    expect(Math.max(...packed.perMessage)).toBe(50);
    expect(packed.perMessage.length).toBeLessThan(10);
  });

  it('refuses more than 1000 results per message with INVALID_ARGUMENT naming max_results_per_message, delivering nothing', async () => {
    const socket = await node.connect('a', 'web');
    const got: unknown[] = [];
    socket.on('notice', (data: unknown) => got.push(data));
    const batch = pushToUsers(node.client.raw, { userIds: ['a'], event: 'notice', maxResultsPerMessage: 1001 });
    const err = await batch.done.then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.details).toContain('max_results_per_message');
    expect(err?.details).toContain('1000');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(got).toEqual([]);
  });
});
