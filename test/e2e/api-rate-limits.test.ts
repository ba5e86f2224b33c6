import { randomBytes } from 'node:crypto';
import { credentials, Metadata, type ServiceError, status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PushServiceClient, PushToUserRequest } from '../../src/gen/pushgate/v1/push_service.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { startNode, type TestNode } from '../support/node.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';

/**
 * Each caller (API key) may make so many calls per second per scope, with a burst; over it the
 * call gets RESOURCE_EXHAUSTED with a retry hint. On one node the limit is the node's; in cluster
 * mode every node draws from the same bucket in Redis.
 */

const KEYS = { billing: randomBytes(24).toString('base64url'), crm: randomBytes(24).toString('base64url') };
const ENV = {
  PUSHGATE_API_KEYS: `billing:push:${KEYS.billing};crm:push:${KEYS.crm}`,
  PUSHGATE_RATE_PUSH_PER_SECOND: '1',
  PUSHGATE_RATE_PUSH_BURST: '3',
};

const clients: PushServiceClient[] = [];
let node: TestNode | undefined;
afterEach(async () => {
  for (const client of clients.splice(0)) client.close();
  await node?.stop();
  node = undefined;
});

interface Outcome {
  readonly code: status;
  readonly errorCode: unknown;
  readonly retryAfterMs: number;
  readonly pushbackMs: unknown;
}

function push(address: string, secret: string): Promise<Outcome> {
  const client = new PushServiceClient(address, credentials.createInsecure());
  clients.push(client);
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${secret}`);
  return new Promise((resolve) =>
    client.pushToUser(PushToUserRequest.fromPartial({ userId: 'u-1', event: 'note', noAck: true }), metadata, (err: ServiceError | null) =>
      resolve({
        code: err?.code ?? status.OK,
        errorCode: err?.metadata.get('pushgate-error-code')[0],
        retryAfterMs: Number(err?.metadata.get('pushgate-retry-after-ms')[0] ?? 0),
        pushbackMs: err?.metadata.get('grpc-retry-pushback-ms')[0],
      }),
    ),
  );
}

async function pushes(address: string, secret: string, count: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let i = 0; i < count; i++) outcomes.push(await push(address, secret));
  return outcomes;
}

describe('rate limits on one node', () => {
  it('admits a burst, refuses the next call with a retry hint, and admits again once the hint has passed', async () => {
    node = await startNode(ENV);
    const burst = await pushes(node.grpcAddress, KEYS.billing, 3);
    expect(burst.map((o) => o.code)).toEqual([status.OK, status.OK, status.OK]);

    const refused = await push(node.grpcAddress, KEYS.billing);
    expect(refused).toMatchObject({ code: status.RESOURCE_EXHAUSTED, errorCode: 'rate_limited' });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    expect(refused.retryAfterMs).toBeLessThanOrEqual(1001);
    expect(refused.pushbackMs).toBe(String(refused.retryAfterMs));

    // Another caller has its own bucket.
    expect((await push(node.grpcAddress, KEYS.crm)).code).toBe(status.OK);

    await new Promise((resolve) => setTimeout(resolve, refused.retryAfterMs + 20));
    expect((await push(node.grpcAddress, KEYS.billing)).code).toBe(status.OK);
  });
});

describe('rate limits in cluster mode', () => {
  let redis: TestRedis;
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('shares one bucket across nodes: a burst spent on node a is spent on node b too', async () => {
    cluster = await startCluster(redis.url, 2, ENV);
    const [a, b] = cluster.nodes;
    const onA = await pushes(a!.grpcAddress, KEYS.billing, 3);
    expect(onA.map((o) => o.code)).toEqual([status.OK, status.OK, status.OK]);

    const onB = await push(b!.grpcAddress, KEYS.billing);
    expect(onB).toMatchObject({ code: status.RESOURCE_EXHAUSTED, errorCode: 'rate_limited' });
    expect((await push(b!.grpcAddress, KEYS.crm)).code).toBe(status.OK);

    await new Promise((resolve) => setTimeout(resolve, onB.retryAfterMs + 20));
    expect((await push(b!.grpcAddress, KEYS.billing)).code).toBe(status.OK);
  });
});
