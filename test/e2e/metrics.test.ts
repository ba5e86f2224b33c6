import { type ChannelCredentials, type ClientReadableStream, credentials, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { Socket } from 'socket.io-client';
import { describe, expect, it } from 'vitest';
import { clusterTestHooks, startCluster } from '../support/cluster.js';
import { grpcError } from '../support/grpc-client.js';
import type { TestNode } from '../support/node.js';
import { presenceStreams, stopWatching } from '../support/presence-watch.js';
import { connectError } from '../support/socket-client.js';
import { testNodes } from '../support/test-nodes.js';
import { signToken } from '../support/tokens.js';
import { waitFor } from '../support/wait.js';

const { cleanups, start } = testNodes();
const hooks = clusterTestHooks();
const { watchLive } = presenceStreams(cleanups);

/** One scrape of `/metrics`, as Prometheus would take it. */
async function scrape(node: TestNode): Promise<string> {
  const res = await fetch(`${node.httpUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
}

/** The samples of a scrape, `name{label="value",…}` → value (labels as the server wrote them). */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const cut = line.lastIndexOf(' ');
    out.set(line.slice(0, cut), Number(line.slice(cut + 1)));
  }
  return out;
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const found = [...samples(text)].filter(([series]) => {
    const [metric, rest = ''] = series.split('{');
    return metric === name && wanted.every((pair) => rest.replace(/}$/, '').split(',').includes(pair));
  });
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.[1];
}

async function metricValue(node: TestNode, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  return sample(await scrape(node), name, labels);
}

/** A client that acks every `notice` (or never, when `acks` is false). */
async function client(node: TestNode, userId: string, clientType: string, acks = true): Promise<Socket> {
  const socket = await node.connect(userId, clientType);
  socket.on('notice', (_data: unknown, ack?: (reply: unknown) => void) => {
    if (acks) ack?.({ ok: true });
  });
  return socket;
}

interface HealthClient {
  check(request: { service: string }, callback: (err: Error | null, response: { status: string }) => void): void;
  watch(request: { service: string }): ClientReadableStream<{ status: string }>;
  close(): void;
}

function healthClient(node: TestNode): HealthClient {
  const pkg = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, creds: ChannelCredentials) => HealthClient } } };
  };
  const health = new pkg.grpc.health.v1.Health(node.grpcAddress, credentials.createInsecure());
  cleanups.push(() => health.close());
  return health;
}

function servingStatus(health: HealthClient): Promise<string> {
  return new Promise((resolve, reject) => health.check({ service: '' }, (err, res) => (err ? reject(err) : resolve(res.status))));
}

async function probe(node: TestNode, path: '/readyz' | '/healthz'): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await fetch(`${node.httpUrl}${path}`);
  return { code: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('/metrics on one node', () => {
  it('counts known traffic exactly: pushes, deliveries, acks, calls, connects, disconnects, refusals, sessions, subscribers', async () => {
    const node = await start();
    const acking = [await client(node, 'm-1', 'app'), await client(node, 'm-1', 'web'), await client(node, 'm-1', 'pc')];
    await client(node, 'm-1', 'app', false);
    const kicked = await client(node, 'm-2', 'web');

    const before = await scrape(node);
    expect(sample(before, 'pushgate_sessions', { client_type: 'app' })).toBe(2);
    expect(sample(before, 'pushgate_sessions', { client_type: 'web' })).toBe(2);
    expect(sample(before, 'pushgate_sessions', { client_type: 'pc' })).toBe(1);
    expect(sample(before, 'pushgate_connects_total', { client_type: 'app' })).toBe(2);
    expect(sample(before, 'pushgate_connects_total', { client_type: 'web' })).toBe(2);
    expect(sample(before, 'pushgate_connects_total', { client_type: 'pc' })).toBe(1);
    // One node, no lease: no lease gauge at all.
    expect(sample(before, 'pushgate_lease_held')).toBeUndefined();
    // Process metrics under prom-client's default names.
    expect(sample(before, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(before, 'nodejs_eventloop_lag_seconds')).toBeGreaterThanOrEqual(0);

    const N = 4;
    for (let i = 0; i < N; i++) {
      const res = await node.client.pushToUser({ userId: 'm-1', event: 'notice', data: { i }, ackTimeoutMs: 150 });
      expect([res.acked, res.timedOut]).toEqual([3, 1]);
    }
    expect((await node.client.pushToUser({ userId: 'm-1', event: 'notice', data: 1, noAck: true })).deliveries).toHaveLength(4);
    expect((await node.client.pushToUser({ userId: 'nobody', event: 'notice', data: 1 })).deliveries).toHaveLength(0);
    await acking[0]!.close();
    // A push after one acking client left: two acked, one timed out.
    await waitFor('the closed client to leave', () => node.app.local.size === 4);
    const partly = await node.client.pushToUser({ userId: 'm-1', event: 'notice', data: 2, ackTimeoutMs: 150 });
    expect([partly.acked, partly.timedOut]).toEqual([2, 1]);
    // Only the silent session: none acked.
    const silentOnly = await node.client.pushToUser({ userId: 'm-1', event: 'notice', clientTypes: ['app'], ackTimeoutMs: 150 });
    expect([silentOnly.acked, silentOnly.timedOut]).toEqual([0, 1]);

    const invalid = await grpcError(node.client.pushToUser({ userId: '', event: 'notice' }));
    expect(invalid.code).toBe(3);
    expect((await connectError(node.httpUrl, {})).code).toBe('token_missing');
    expect((await connectError(node.httpUrl, { token: await signToken('m-3'), clientType: 'fridge' })).code).toBe('client_type_invalid');
    expect((await node.client.disconnectSessions({ userId: 'm-2' })).disconnected).toHaveLength(1);
    await waitFor('the kicked client to see its disconnect', () => !kicked.connected);

    const watch = await watchLive(node);
    expect(await metricValue(node, 'pushgate_presence_subscribers')).toBe(1);
    await stopWatching(node, watch);
    await waitFor(
      'the cancelled stream to be counted',
      async () =>
        (await metricValue(node, 'pushgate_presence_subscribers')) === 0 &&
        (await metricValue(node, 'pushgate_presence_streams_ended_total', { reason: 'cancelled' })) === 1,
    );

    const text = await scrape(node);
    const pushes = (outcome: string): number | undefined => sample(text, 'pushgate_pushes_total', { outcome });
    expect([
      pushes('all_acked'),
      pushes('partly_acked'),
      pushes('none_acked'),
      pushes('no_sessions'),
      pushes('no_ack'),
      pushes('error'),
    ]).toEqual([0, N + 1, 1, 1, 1, 0]);
    const deliveries = (status: string): number | undefined => sample(text, 'pushgate_deliveries_total', { status });
    expect([deliveries('acked'), deliveries('timeout'), deliveries('sent'), deliveries('disconnected'), deliveries('failed')]).toEqual([
      3 * N + 2,
      N + 2,
      4,
      0,
      0,
    ]);
    expect(sample(text, 'pushgate_ack_latency_seconds_count')).toBe(3 * N + 2);
    expect(sample(text, 'pushgate_ack_latency_seconds_bucket', { le: '30' })).toBe(3 * N + 2);
    expect(sample(text, 'pushgate_ack_latency_seconds_bucket', { le: '0.001' })).toBeLessThanOrEqual(3 * N + 2);

    const calls = (method: string, code: string): number | undefined => sample(text, 'pushgate_grpc_calls_total', { method, code });
    expect(calls('PushToUser', 'OK')).toBe(N + 4);
    expect(calls('PushToUser', 'INVALID_ARGUMENT')).toBe(1);
    expect(calls('DisconnectSessions', 'OK')).toBe(1);
    expect(calls('WatchPresence', 'CANCELLED')).toBe(1);
    expect(sample(text, 'pushgate_grpc_call_duration_seconds_count', { method: 'PushToUser' })).toBe(N + 5);

    expect(sample(text, 'pushgate_handshake_refusals_total', { code: 'token_missing' })).toBe(1);
    expect(sample(text, 'pushgate_handshake_refusals_total', { code: 'client_type_invalid' })).toBe(1);
    expect(sample(text, 'pushgate_disconnects_total', { reason: 'kicked' })).toBe(1);
    expect(sample(text, 'pushgate_disconnects_total', { reason: 'client_disconnect' })).toBe(1);
    expect(sample(text, 'pushgate_sessions', { client_type: 'app' })).toBe(1);
    expect(sample(text, 'pushgate_sessions', { client_type: 'web' })).toBe(1);
    expect(sample(text, 'pushgate_sessions', { client_type: 'pc' })).toBe(1);
  });

  it('keeps label values bounded: no user id, session id or free text in any line, after pushes to 100 users', async () => {
    const node = await start();
    const sockets = [await client(node, 'card-user-7', 'app'), await client(node, 'card-user-8', 'web')];
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        node.client.pushToUser({ userId: `card-user-${i}`, event: 'notice', data: { i }, ackTimeoutMs: 1000 }),
      ),
    );
    await grpcError(node.client.pushToUser({ userId: 'card-user-x', event: '' }));
    await connectError(node.httpUrl, { token: 'card-user-token', clientType: 'app' });
    const text = await scrape(node);
    expect(sample(text, 'pushgate_pushes_total', { outcome: 'no_sessions' })).toBe(98);
    expect(sample(text, 'pushgate_pushes_total', { outcome: 'all_acked' })).toBe(2);
    const offending = text.split('\n').filter((line) => line.includes('card-user') || sockets.some((s) => line.includes(s.id!)));
    expect(offending).toEqual([]);
    // Every label value of pushgate's own metrics comes from a short fixed list.
    const series = [...samples(text).keys()].filter((key) => key.startsWith('pushgate_'));
    expect(series.length).toBeLessThan(400);
  });

  it('serves /healthz (alive) and /readyz (ready) apart: draining is not ready, but alive', async () => {
    const node = await start();
    // A draining node takes no new connections: its health is followed on a stream opened before.
    const seen: string[] = [];
    const healthWatch = healthClient(node).watch({ service: '' });
    healthWatch.on('data', (update: { status: string }) => seen.push(update.status));
    healthWatch.on('error', () => {}); // cancelled below
    cleanups.push(() => healthWatch.cancel());
    await waitFor('the first health update', () => seen.length > 0);
    expect(seen).toEqual(['SERVING']);
    expect(await probe(node, '/readyz')).toMatchObject({ code: 200, body: { status: 'ok', reasons: [] } });

    // An unacked push keeps the drain open while the node is looked at.
    const socket = await node.connect('d-1', 'app');
    let ack: ((reply: unknown) => void) | undefined;
    socket.on('notice', (_data: unknown, reply: (r: unknown) => void) => {
      ack = reply;
    });
    const pushed = node.client.pushToUser({ userId: 'd-1', event: 'notice', data: 1, ackTimeoutMs: 10_000 });
    await waitFor('the push to reach the client', () => ack);
    const stopped = node.app.stop();
    await waitFor('/readyz to turn 503', async () => (await probe(node, '/readyz')).code === 503);
    expect(await probe(node, '/readyz')).toMatchObject({ code: 503, body: { status: 'draining', reasons: ['draining'] } });
    expect(await probe(node, '/healthz')).toMatchObject({ code: 200, body: { status: 'alive' } });
    await waitFor('NOT_SERVING on the health watch', () => seen.includes('NOT_SERVING'));
    healthWatch.cancel();
    ack!({ ok: true });
    expect((await pushed).acked).toBe(1);
    await stopped;
  });
});

describe('/metrics in cluster mode', () => {
  it('counts bus requests after a cross-node push, times Redis scripts, and shows the lease held', async () => {
    const cluster = await startCluster(hooks.redis().url, 2);
    hooks.cleanups.push(() => cluster.stop());
    const [a, b] = cluster.nodes as [TestNode, TestNode];
    await client(b, 'c-1', 'app');
    const res = await a.client.pushToUser({ userId: 'c-1', event: 'notice', data: 1, ackTimeoutMs: 2000 });
    expect(res.acked).toBe(1);

    const text = await scrape(a);
    expect(sample(text, 'pushgate_bus_requests_total', { type: 'push', outcome: 'ok' })).toBe(1);
    expect(sample(text, 'pushgate_bus_request_duration_seconds_count', { type: 'push' })).toBe(1);
    expect(sample(text, 'pushgate_pushes_total', { outcome: 'all_acked' })).toBe(1);
    expect(sample(text, 'pushgate_deliveries_total', { status: 'acked' })).toBe(1);
    expect(sample(text, 'pushgate_redis_command_duration_seconds_count', { operation: 'pgLookup' })).toBe(1);
    expect(sample(text, 'pushgate_redis_command_duration_seconds_count', { operation: 'pgLease' })).toBeGreaterThan(0);
    expect(sample(text, 'pushgate_lease_held')).toBe(1);
    expect(await metricValue(b, 'pushgate_lease_held')).toBe(1);
    // The delivery happened on b, but the push is counted once, where it was called.
    expect(await metricValue(b, 'pushgate_pushes_total', { outcome: 'all_acked' })).toBe(0);
    expect(await metricValue(b, 'pushgate_sessions', { client_type: 'app' })).toBe(1);
  });

  it('turns /readyz 503 and gRPC health NOT_SERVING while Redis does not answer, keeps /healthz 200, then recovers', async () => {
    const cluster = await startCluster(hooks.redis().url, 1);
    hooks.cleanups.push(() => cluster.stop());
    const [a] = cluster.nodes as [TestNode];
    const health = healthClient(a);
    expect(await servingStatus(health)).toBe('SERVING');

    await hooks.redis().pause(2500);
    await waitFor('/readyz to turn 503', async () => (await probe(a, '/readyz')).code === 503, { timeoutMs: 3000 });
    expect(await probe(a, '/readyz')).toMatchObject({ code: 503, body: { status: 'not_ready', reasons: ['registry_unavailable'] } });
    expect(await probe(a, '/healthz')).toMatchObject({ code: 200, body: { status: 'alive' } });
    expect(await servingStatus(health)).toBe('NOT_SERVING');
    expect(await metricValue(a, 'pushgate_lease_held')).toBe(0);

    await waitFor('/readyz to be 200 again', async () => (await probe(a, '/readyz')).code === 200, { timeoutMs: 6000 });
    expect(await servingStatus(health)).toBe('SERVING');
    expect(await metricValue(a, 'pushgate_lease_held')).toBe(1);
  });
});
