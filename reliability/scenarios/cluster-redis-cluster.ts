import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { onExit } from '../../bench/lib/children.js';
import { findRedisServer } from '../../test/support/redis-server.js';

const run = promisify(execFile);
const HOST = '127.0.0.1';
/** How long a primary may be silent before its replica takes over (Redis's cluster-node-timeout). */
export const NODE_TIMEOUT_MS = 1000;

/**
 * A Redis Cluster of three primaries, each with one replica, on free loopback ports — what
 * test/support/redis-server.ts's startRedisCluster (primaries only) cannot give: a primary to kill
 * so its replica is promoted. Formed with `redis-cli --cluster create --cluster-replicas 1`.
 */
export interface ReplicatedCluster {
  /** Seed URLs (every node's), for REDIS_URL with PUSHGATE_REDIS_CLUSTER=1. */
  readonly urls: string[];
  /** SIGKILLs the primary serving `key`'s slot; resolves with its port once it is dead. */
  killPrimaryOf(key: string): Promise<number>;
  /** Resolves once every live node reports cluster_state:ok and `key`'s slot has a live primary; rejects after `timeoutMs`. */
  waitHealthy(key: string, timeoutMs: number): Promise<void>;
  stop(): Promise<void>;
}

interface Server {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  dead: boolean;
}

export async function startReplicatedCluster(): Promise<ReplicatedCluster> {
  const binary = findRedisServer();
  const cli = join(binary, '..', 'redis-cli');
  const dir = mkdtempSync(join(tmpdir(), 'pushgate-rc-'));
  const servers: Server[] = [];
  const stop = async (): Promise<void> => {
    for (const s of servers) if (!s.dead) s.child.kill('SIGKILL');
    await Promise.all(servers.map((s) => s.exited));
    rmSync(dir, { recursive: true, force: true });
  };
  // Should the run end early, the runner's cleanUp() stops them.
  onExit(stop);
  try {
    for (let i = 0; i < 6; i++) servers.push(await launch(binary, join(dir, String(i))));
    await Promise.all(servers.map((s) => waitPing(cli, s.port)));
    await run(cli, ['--cluster', 'create', ...servers.map((s) => `${HOST}:${s.port}`), '--cluster-replicas', '1', '--cluster-yes'], {
      timeout: 30_000,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const live = (): Server[] => servers.filter((s) => !s.dead);
  const ask = async (port: number, ...args: string[]): Promise<string> =>
    (await run(cli, ['-h', HOST, '-p', String(port), ...args], { timeout: 5000 })).stdout;
  /** The port of the live primary serving `key`'s slot, by CLUSTER NODES of any live node ('' if none). */
  const primaryOf = async (key: string): Promise<number | undefined> => {
    const slot = Number((await ask(live()[0]!.port, 'CLUSTER', 'KEYSLOT', key)).trim());
    const nodes = await ask(live()[0]!.port, 'CLUSTER', 'NODES');
    for (const line of nodes.split('\n')) {
      const [, address, flags, , , , , state, ...ranges] = line.split(' ');
      if (address === undefined || !flags?.includes('master') || flags.includes('fail') || state !== 'connected') continue;
      const port = Number(address.split('@')[0]!.split(':')[1]);
      const serves = ranges.some((r) => {
        const [from, to] = r.split('-').map(Number);
        return slot >= from! && slot <= (to ?? from)!;
      });
      if (serves && live().some((s) => s.port === port)) return port;
    }
    return undefined;
  };
  const cluster: ReplicatedCluster = {
    urls: servers.map((s) => `redis://${HOST}:${s.port}`),
    async killPrimaryOf(key) {
      const port = await primaryOf(key);
      const server = servers.find((s) => s.port === port);
      if (server === undefined) throw new Error(`no live primary serves ${key}`);
      server.dead = true;
      server.child.kill('SIGKILL');
      await server.exited;
      return server.port;
    },
    async waitHealthy(key, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let last = '';
      for (;;) {
        try {
          const infos = await Promise.all(live().map((s) => ask(s.port, 'CLUSTER', 'INFO')));
          const ok = infos.every((info) => info.includes('cluster_state:ok'));
          if (ok && (await primaryOf(key)) !== undefined) return;
          last = infos.map((i) => /cluster_state:\w+/.exec(i)?.[0] ?? '?').join(' ');
        } catch (err) {
          last = (err as Error).message;
        }
        if (Date.now() > deadline) throw new Error(`the Redis Cluster is not healthy after ${timeoutMs} ms: ${last}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop,
  };
  await cluster.waitHealthy('{s0}', 20_000);
  // Every replica synced with its primary: one that never did would not be promoted.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const infos = await Promise.all(servers.map((s) => ask(s.port, 'INFO', 'replication')));
    const replicas = infos.filter((i) => i.includes('role:slave'));
    if (replicas.length === 3 && replicas.every((i) => i.includes('master_link_status:up'))) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Redis Cluster's replicas did not sync in 20 s (${replicas.length} replicas)`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return cluster;
}

async function launch(binary: string, dir: string): Promise<Server> {
  const port = await freePort();
  const args = ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes'];
  args.push('--cluster-config-file', `${dir}-nodes.conf`, '--cluster-node-timeout', String(NODE_TIMEOUT_MS), '--dir', tmpdir());
  // A replica may take over however long ago it last heard its primary (the data here is seconds old).
  args.push('--cluster-replica-validity-factor', '0');
  const child = spawn(binary, args, { stdio: 'ignore' });
  const server: Server = { port, child, dead: false, exited: new Promise((resolve) => child.once('exit', () => resolve())) };
  void server.exited.then(() => (server.dead = true));
  return server;
}

async function waitPing(cli: string, port: number): Promise<void> {
  const deadline = Date.now() + 5000;
  for (;;) {
    try {
      if ((await run(cli, ['-h', HOST, '-p', String(port), 'PING'], { timeout: 1000 })).stdout.trim() === 'PONG') return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not answer PING in 5 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      probe.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
