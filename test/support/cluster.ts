import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startNode, type TestNode } from './node.js';
import { startRedis, type TestRedis } from './redis-server.js';

/**
 * Cluster timings short enough for tests: a Redis command fails after 500 ms, a lease lapses
 * after 1.5 s (renewed every 500 ms), dead nodes are looked for every 300 ms, and a push waits
 * 500 ms past its ack timeout for another node's reply.
 */
export const FAST_CLUSTER_ENV: Readonly<Record<string, string>> = Object.freeze({
  PUSHGATE_NODE_LEASE_MS: '1500',
  PUSHGATE_REAP_INTERVAL_MS: '300',
  PUSHGATE_REDIS_COMMAND_TIMEOUT_MS: '500',
  PUSHGATE_NODE_REPLY_GRACE_MS: '500',
});

/** A key prefix no other test uses, so tests sharing one redis-server never see each other's keys. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(4).toString('hex')}:`;
}

export interface TestCluster {
  readonly nodes: TestNode[];
  /** The key prefix every node of this cluster uses. */
  readonly prefix: string;
  /** Stops every node (in parallel). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts `count` real nodes in this process against one Redis (`redisUrl`: one URL, or a Redis
 * Cluster's comma-separated seeds with PUSHGATE_REDIS_CLUSTER=1 in `env`), with FAST_CLUSTER_ENV
 * timings, a fresh key prefix and node ids `node-a`, `node-b`, …. `env` overrides anything.
 * Nodes start one after another, so each finds the others' leases.
 */
export async function startCluster(redisUrl: string, count: number, env: Record<string, string> = {}): Promise<TestCluster> {
  const prefix = env.PUSHGATE_REDIS_PREFIX ?? uniquePrefix();
  const nodes: TestNode[] = [];
  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => (stopped ??= Promise.all(nodes.map((node) => node.stop())).then(() => undefined));
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startNode({
          ...FAST_CLUSTER_ENV,
          REDIS_URL: redisUrl,
          PUSHGATE_REDIS_PREFIX: prefix,
          PUSHGATE_NODE_ID: `node-${String.fromCharCode(97 + i)}`,
          ...env,
        }),
      );
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, prefix, stop };
}

/** What the tests of one in-process cluster test file share (see clusterTestHooks). */
export interface ClusterTestHooks {
  /** Steps run after each test, last registered first, each bounded (runCleanups). */
  readonly cleanups: (() => unknown)[];
  /** The file's private redis-server; there from the first test to the last. */
  redis(): TestRedis;
}

/**
 * Registers the hooks an in-process cluster test file needs: a private redis-server for the whole
 * file (started before its first test, stopped after its last; tests keep apart by key prefix),
 * and `cleanups`, run after each test. Call once, at the top level of the file.
 */
export function clusterTestHooks(): ClusterTestHooks {
  let redis: TestRedis | undefined;
  const cleanups: (() => unknown)[] = [];
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });
  afterEach(() => runCleanups(cleanups));
  return {
    cleanups,
    redis() {
      if (redis === undefined) throw new Error('the redis-server of this test file is not started (read it inside a test or hook)');
      return redis;
    },
  };
}

/**
 * Runs cleanup steps last registered first (streams and clients before the nodes they use), each
 * bounded by `stepMs`: a node that cannot stop fails the hook with a message naming the step
 * instead of hanging it, and the remaining steps still run.
 */
export async function runCleanups(steps: (() => unknown)[], stepMs = 5000): Promise<void> {
  const problems: string[] = [];
  for (const step of steps.splice(0).reverse()) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), stepMs)));
    const done = Promise.resolve()
      .then(step)
      .then(
        () => 'done' as const,
        (err: unknown) => {
          problems.push(`${describeStep(step)} failed: ${(err as Error).message}`);
          return 'done' as const;
        },
      );
    if ((await Promise.race([done, late])) === 'late') problems.push(`${describeStep(step)} still running after ${stepMs} ms`);
    clearTimeout(timer);
  }
  if (problems.length > 0) throw new Error(`cleanup: ${problems.join('; ')}`);
}

function describeStep(step: () => unknown): string {
  return String(step).replace(/\s+/g, ' ').slice(0, 60);
}

export interface TcpProxy {
  /** redis://127.0.0.1:<port>: where the nodes should connect. */
  readonly url: string;
  readonly port: number;
  /** Connections currently relayed. */
  readonly connections: number;
  /**
   * Makes the target unreachable, as a stopped server would be: existing connections are reset
   * and new ones refused (nothing listens on the port). Resolves once the port is closed.
   */
  cut(): Promise<void>;
  /** Listens on the same port again and relays new connections. */
  restore(): Promise<void>;
  /**
   * Holds every byte in both directions without closing anything, as a network path that stalls
   * does: connections stay open, commands and replies wait. `flow()` delivers what was held, in order.
   */
  stall(): void;
  flow(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay on a free loopback port to `targetPort`. Tests point REDIS_URL at it to make Redis
 * unreachable, or the path to it stall, without touching Redis or its data (the test redis helper
 * can only kill a server together with its data, or pause it for every client at once).
 */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let stalled = false;
  const relay = (client: Socket): void => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    const pair: Pair = { client, upstream, held: [] };
    pairs.add(pair);
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    const forward = (to: Socket) => (chunk: Buffer) => {
      if (stalled) pair.held.push([to, chunk]);
      else to.write(chunk);
    };
    client.on('data', forward(upstream));
    upstream.on('data', forward(client));
  };
  let server: Server = createServer(relay);
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  const closeServer = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => resolve());
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.destroy();
      }
      pairs.clear();
    });
  const port = await listen(0);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get connections() {
      return pairs.size;
    },
    cut: closeServer,
    async restore() {
      if (server.listening) return;
      server = createServer(relay);
      await listen(port);
    },
    stall() {
      stalled = true;
    },
    flow() {
      stalled = false;
      for (const pair of pairs) for (const [to, chunk] of pair.held.splice(0)) to.write(chunk);
    },
    close: async () => {
      stalled = false;
      await closeServer();
    },
  };
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Chunks held while stalled, with the socket each is for. */
  readonly held: [Socket, Buffer][];
}
