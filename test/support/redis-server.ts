import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';

// Private redis-server processes for tests. Each test file starts its own servers on OS-chosen
// ports: the machine's shared Redis on 6379 is never touched, and files running in parallel never
// see each other's keys.

export const REDIS_SERVER_MISSING =
  "redis-server not found on PATH: install it (Debian: apt-get install -y redis-server; 'npm test' does this via scripts/system-deps.sh). " +
  'A REDIS_URL alone is not enough: these tests restart, pause and cluster servers of their own.';

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 5000;
const CLUSTER_READY_TIMEOUT_MS = 10_000;
const CLUSTER_SLOTS = 16384;
/** Attempts to start on fresh ports when another process grabbed ours between probe and bind. */
const PORT_ATTEMPTS = 5;
/** How much of the server's log is kept for error messages. */
const LOG_TAIL_CHARS = 4000;
const LIVE_SERVERS = Symbol.for('pushgate.test.liveRedisServers');

/** Cluster mode relies on Redis 7 (sharded pub/sub, ADDSLOTSRANGE, stream details): an older server fails here, plainly. */
function requireVersion7(binary: string): void {
  const version = /v=(\d+)\.(\d+)/.exec(execFileSync(binary, ['--version'], { encoding: 'utf8' }));
  if (version === null || Number(version[1]) < 7) {
    throw new Error(
      `${binary} is Redis ${version?.slice(1).join('.') ?? 'of unknown version'}; pushgate's cluster mode and its tests need Redis 7.0 or later (Debian 12 ships 7.0)`,
    );
  }
}

/**
 * Finds an executable `redis-server` in `searchPath` (a PATH-style list). Throws the message that
 * says how to install it, so a machine without Redis fails loudly instead of skipping tests.
 */
export function findRedisServer(searchPath: string = process.env.PATH ?? ''): string {
  for (const dir of searchPath.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'redis-server');
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, fsConstants.X_OK);
      requireVersion7(candidate);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new Error(REDIS_SERVER_MISSING);
}

export interface StartRedisOptions {
  /** PATH-style list searched for `redis-server`; defaults to process.env.PATH. */
  searchPath?: string;
  /**
   * More redis-server arguments, after the defaults so they override them (e.g. `['--appendonly',
   * 'yes', '--appendfsync', 'always']`); restart() starts the server with them again, in the same dir.
   */
  args?: readonly string[];
}

export interface TestRedis {
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly port: number;
  /**
   * A new ioredis client to this server for test assertions; closed by stop(). It reconnects
   * quickly (≤ 100 ms between attempts) so it survives restart(); `options` override anything.
   */
  client(options?: RedisOptions): Redis;
  /**
   * Kills the server (SIGKILL) and starts it again on the same port and dir with the same arguments;
   * resolves when it answers PING. Empty again, unless `args` turned on persistence (AOF).
   */
  restart(): Promise<void>;
  /** CLIENT PAUSE <ms> ALL from a side connection: every client's commands hang for ms. Resolves once the pause is in effect. */
  pause(ms: number): Promise<void>;
  /** Stops the server (by pid) and closes helper clients. Idempotent. */
  stop(): Promise<void>;
}

export interface TestRedisCluster {
  /** Seed URLs of the masters. */
  readonly urls: string[];
  /** An ioredis Cluster client seeded with every master; closed by stop(). `options` override anything. */
  client(options?: ClusterOptions): Cluster;
  /** Stops every node (by pid) and closes helper clients. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a private, empty redis-server on a free loopback port; it persists nothing unless `args` say so. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const binary = findRedisServer(options.searchPath);
  const extraArgs = options.args ?? [];
  let server = await startOnFreePorts(binary, false, extraArgs);
  const port = server.port;
  const url = `redis://${HOST}:${port}`;
  const clients: Redis[] = [];
  let stopped = false;
  return {
    url,
    port,
    client(overrides) {
      if (stopped) throw new Error(`test redis ${url} is stopped`);
      const client = new Redis({ host: HOST, port, retryStrategy: quickRetry, ...overrides });
      clients.push(client);
      return client;
    },
    async restart() {
      if (stopped) throw new Error(`test redis ${url} is stopped`);
      await server.kill();
      server = await launch(binary, server.port, server.dir, undefined, extraArgs);
    },
    async pause(ms) {
      // The OK reply comes after the pause is set, so returning here means it is in effect. A
      // one-shot connection: a reused one would itself hang behind the pause it asked for.
      await rawCommand(port, ['CLIENT', 'PAUSE', String(ms), 'ALL']);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const client of clients) client.disconnect();
      await server.kill();
      server.removeDir();
    },
  };
}

/**
 * A real Redis Cluster of `masters` redis-server processes (no replicas) on free ports, slots
 * assigned evenly, `cluster_state:ok` on every node and every node knowing all the others.
 */
export async function startRedisCluster(masters = 3, options: StartRedisOptions = {}): Promise<TestRedisCluster> {
  if (!Number.isInteger(masters) || masters < 1) throw new Error(`masters must be a positive integer, got ${masters}`);
  const binary = findRedisServer(options.searchPath);
  const settled = await Promise.allSettled(Array.from({ length: masters }, () => startOnFreePorts(binary, true)));
  const nodes = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const clients: Cluster[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const client of clients) client.disconnect();
    await Promise.all(nodes.map((node) => node.kill()));
    for (const node of nodes) node.removeDir();
  };
  try {
    const failed = settled.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await formCluster(nodes);
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    urls: nodes.map((node) => `redis://${HOST}:${node.port}`),
    client(overrides) {
      if (stopped) throw new Error('test redis cluster is stopped');
      const client = new Cluster(
        nodes.map((node) => ({ host: HOST, port: node.port })),
        { clusterRetryStrategy: quickRetry, ...overrides },
      );
      clients.push(client);
      return client;
    },
    stop,
  };
}

function quickRetry(times: number): number {
  return Math.min(times * 20, 100);
}

/**
 * Sets each node's config epoch (as redis-cli --cluster create does, so no epoch-collision round is
 * needed), gives each an even share of the slots, has every pair meet, and waits until every node
 * sees all slots covered and all nodes known. Redis keeps a new master's cluster_state at fail
 * for 2 s after it starts (CLUSTER_WRITABLE_DELAY, not configurable), so this takes about 2 s.
 */
async function formCluster(nodes: RunningServer[]): Promise<void> {
  const share = Math.floor(CLUSTER_SLOTS / nodes.length);
  await Promise.all(
    nodes.map(async (node, i) => {
      const first = i * share;
      const last = i === nodes.length - 1 ? CLUSTER_SLOTS - 1 : first + share - 1;
      await rawCommand(node.port, ['CLUSTER', 'SET-CONFIG-EPOCH', String(i + 1)]);
      await rawCommand(node.port, ['CLUSTER', 'ADDSLOTSRANGE', String(first), String(last)]);
    }),
  );
  // Every pair meets directly: introducing everyone to one seed leaves the others to find each
  // other by gossip, which took up to two extra seconds.
  const meetings = nodes.flatMap((node, i) =>
    nodes.slice(i + 1).map((other) => rawCommand(node.port, ['CLUSTER', 'MEET', HOST, String(other.port), String(other.busPort)])),
  );
  await Promise.all(meetings);
  const deadline = Date.now() + CLUSTER_READY_TIMEOUT_MS;
  let lastInfo = '';
  for (;;) {
    const infos = await Promise.all(nodes.map((node) => rawCommand(node.port, ['CLUSTER', 'INFO'])));
    const ready = infos.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${nodes.length}\r\n`));
    if (ready) return;
    lastInfo = infos.map((info, i) => `node ${nodes[i]?.port}: ${oneLine(info)}`).join('\n');
    if (Date.now() > deadline) {
      const died = nodes.find((node) => node.exited);
      throw new Error(
        `redis cluster not ready after ${CLUSTER_READY_TIMEOUT_MS} ms\n${lastInfo}` +
          (died ? `\nnode ${died.port} died:\n${died.log()}` : ''),
      );
    }
    await sleep(20);
  }
}

function oneLine(info: string): string {
  return info
    .split('\r\n')
    .filter((line) => /^cluster_(state|slots_assigned|known_nodes|size)/.test(line))
    .join(' ');
}

interface RunningServer {
  readonly port: number;
  readonly busPort: number | undefined;
  readonly dir: string;
  readonly exited: boolean;
  /** The tail of the server's stdout and stderr. */
  log(): string;
  /** SIGKILL by pid; resolves once the process is gone (its ports closed). */
  kill(): Promise<void>;
  removeDir(): void;
}

class PortInUseError extends Error {}

/** Starts a server on ports the OS reports free, trying fresh ones if another process beats us to a port. */
async function startOnFreePorts(binary: string, cluster: boolean, extraArgs: readonly string[] = []): Promise<RunningServer> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const busPort = cluster ? await freePort() : undefined;
    // Fresh per attempt: a cluster node may already have written nodes.conf for the lost port.
    const dir = mkdtempSync(join(tmpdir(), 'pushgate-redis-'));
    try {
      return await launch(binary, port, dir, busPort, extraArgs);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      if (!(error instanceof PortInUseError) || attempt >= PORT_ATTEMPTS) throw error;
    }
  }
}

/** A port the OS just handed out for listening on loopback (closed again, so it is free unless raced). */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.unref();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => (port ? resolve(port) : reject(new Error('no port from the OS'))));
    });
  });
}

/** Spawns redis-server on `port` and resolves once it answers PING; rejects with its log if it dies first. */
async function launch(
  binary: string,
  port: number,
  dir: string,
  busPort: number | undefined,
  extraArgs: readonly string[] = [],
): Promise<RunningServer> {
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir];
  if (busPort !== undefined) {
    args.push('--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'));
    args.push('--cluster-port', String(busPort));
  }
  args.push(...extraArgs);
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  liveServers.set(child, dir);
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-LOG_TAIL_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  let spawnError: Error | undefined;
  const gone = new Promise<void>((resolve) => {
    child.once('error', (error) => {
      spawnError = error;
      exited = true;
      liveServers.delete(child);
      resolve();
    });
    child.once('exit', () => {
      exited = true;
      liveServers.delete(child);
      resolve();
    });
  });
  // A server a test forgot to stop must not hold the worker open; the exit hook still kills it.
  child.unref();
  // Piped stdio streams are net.Sockets at runtime, typed as plain Readables.
  for (const stream of [child.stdout, child.stderr]) (stream as Socket | null)?.unref();

  const server: RunningServer = {
    port,
    busPort,
    dir,
    get exited() {
      return exited;
    },
    log: () => output,
    async kill() {
      // Referenced again so the process stays alive until the exit is seen (the port is free then).
      child.ref();
      if (!exited && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      await gone;
    },
    removeDir() {
      rmSync(dir, { recursive: true, force: true });
    },
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await gone;
      const why = spawnError ? `${spawnError.message}\n` : '';
      const message = `redis-server on port ${port} exited before answering PING (code ${child.exitCode}, signal ${child.signalCode})\n${why}${output}`;
      throw /Address already in use/.test(output) ? new PortInUseError(message) : new Error(message);
    }
    if (await answersPing(port)) return server;
    if (Date.now() > deadline) {
      await server.kill();
      throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms\n${output}`);
    }
    await sleep(5);
  }
}

async function answersPing(port: number): Promise<boolean> {
  try {
    return (await rawCommand(port, ['PING'], 500)) === 'PONG';
  } catch {
    return false;
  }
}

/**
 * Sends one command over a fresh RESP2 connection and returns the reply (simple, integer or bulk
 * string). Used for setup instead of ioredis so probes have no retry or offline-queue behaviour.
 */
function rawCommand(port: number, args: string[], timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    const finish = (error: Error | undefined, reply?: string): void => {
      socket.destroy();
      if (error) reject(error);
      else resolve(reply ?? '');
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`${args.join(' ')}: no reply from port ${port} in ${timeoutMs} ms`)));
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error(`${args.join(' ')}: port ${port} closed the connection`)));
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const reply = parseReply(buffer);
      if (reply === undefined) return;
      if (reply.error) finish(new Error(`${args.join(' ')} on port ${port}: ${reply.value}`));
      else finish(undefined, reply.value);
    });
    socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`);
  });
}

/** Parses one complete RESP2 reply of the kinds the setup commands return; undefined until complete. */
function parseReply(buffer: Buffer): { error: boolean; value: string } | undefined {
  const lineEnd = buffer.indexOf('\r\n');
  if (lineEnd < 0) return undefined;
  const type = String.fromCharCode(buffer[0] ?? 0);
  const line = buffer.subarray(1, lineEnd).toString();
  if (type === '+' || type === ':') return { error: false, value: line };
  if (type === '-') return { error: true, value: line };
  if (type === '$') {
    const length = Number(line);
    if (length < 0) return { error: false, value: '' };
    const start = lineEnd + 2;
    if (buffer.length < start + length + 2) return undefined;
    return { error: false, value: buffer.subarray(start, start + length).toString() };
  }
  return { error: true, value: `unexpected reply type ${JSON.stringify(type)}` };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Every redis-server this process started and has not seen exit, with its data dir. Process-wide
 * on purpose: the hooks below must reach servers of tests that crashed before calling stop(), so
 * nothing outlives the test run. A SIGKILLed test process cannot be helped. Kept on globalThis so
 * a test runner that re-evaluates this module per file still installs the hooks once.
 */
const hooks = globalThis as Record<symbol, unknown>;
hooks[LIVE_SERVERS] ??= installExitHooks();
const liveServers = hooks[LIVE_SERVERS] as Map<ChildProcess, string>;

function installExitHooks(): Map<ChildProcess, string> {
  const servers = new Map<ChildProcess, string>();
  const killAll = (): void => {
    for (const [child, dir] of servers) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    }
    servers.clear();
  };
  // 'exit' covers process.exit() and uncaught errors (its handlers run synchronously, as
  // process.kill does). Signals skip 'exit', and vitest stops its fork workers with SIGTERM.
  process.once('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Listening replaced the signal's default (exit): restore it unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  return servers;
}
