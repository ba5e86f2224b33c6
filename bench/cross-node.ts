/**
 * npm run bench:cross-node — what a cross-node push costs, per candidate transport, against the
 * floor of a push to sockets the node holds itself, measured in the same run and interleaved so
 * the ratios share the machine's noise. Absolute times are only comparable within one run; the
 * Redis numbers (commands, pub/sub deliveries and bytes per push) are machine-independent.
 *
 * Self-contained on purpose: it does not import src/ (being rewritten). Every "node" is a Socket.IO
 * v4 server on loopback in this one process, its sessions real socket.io-client sockets that ack.
 * A private redis-server is started on a free port and killed at the end (never the shared 6379).
 *
 * Options:
 *   floor    the node holds the sockets: per-session emit with ack, wait for every ack (no Redis hop).
 *   pubsub   request/reply over plain pub/sub: the caller PUBLISHes {id, from, sessionIds, event, data,
 *            ackTimeoutMs} on <prefix>bus:<node> of each owning node; that node emits with acks locally
 *            and PUBLISHes {id, deliveries} on <prefix>bus:<caller>. PUBLISH's receiver count of 0 says
 *            at once that the target node is not listening.
 *   adapter  @socket.io/redis-adapter: io.serverSideEmitWithAck('push', payload) — a PUBSUB NUMSUB then
 *            a broadcast to every other node, each of which must answer; its timeout is the adapter's
 *            requestsTimeout, not the push's ackTimeoutMs.
 *
 * Topologies (sessions of one user):
 *   1 sess       caller + 1 remote node holding 1 session
 *   10 sess      caller + 1 remote node holding 10 sessions
 *   3n 5+5       caller + 2 remote nodes holding 5 sessions each
 *   3n 10+0      caller + 2 remote nodes, all 10 sessions on one (shows who receives what)
 * The floor of a topology delivers to the same sockets directly.
 *
 * Env: BENCH_ROUNDS (4), BENCH_CALLS (750 sequential per round per variant, ≥ 2000 in total),
 *      BENCH_TPUT_CALLS (1000 per round), BENCH_CONCURRENCY (32), BENCH_WARMUP (300).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type Server as HttpServer } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { type DefaultEventsMap, Server, type Socket as ServerSocket } from 'socket.io';
import { type Socket as ClientSocket, io as connectClient } from 'socket.io-client';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const CALLS = Number(process.env.BENCH_CALLS ?? 750);
const TPUT_CALLS = Number(process.env.BENCH_TPUT_CALLS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 300);
const ACK_TIMEOUT_MS = 5000;
const REPLY_GRACE_MS = 1000;

// ---------------------------------------------------------------------------------------------
// Wire shapes
// ---------------------------------------------------------------------------------------------

type Status = 'acked' | 'timeout' | 'offline' | 'node_unreachable' | 'node_timeout';

interface Delivery {
  sessionId: string;
  status: Status;
  latencyUs: number;
  ackData: unknown;
}

interface BusRequest {
  id: string;
  from: string;
  sessionIds: string[];
  event: string;
  data: unknown;
  ackTimeoutMs: number;
}

interface BusReply {
  id: string;
  /** Not in the minimal shape; lets the adapter caller see who answered (pub/sub knows from the id). */
  node?: string;
  deliveries: Delivery[];
}

interface InterServerEvents {
  push: (payload: BusRequest, cb: (reply: BusReply) => void) => void;
}

type NodeServer = Server<DefaultEventsMap, DefaultEventsMap, InterServerEvents>;

const EVENT = 'notice';
const DATA = { title: 'approve', id: 42 };

// ---------------------------------------------------------------------------------------------
// Private redis-server
// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
}

async function startRedis(): Promise<RedisProcess> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    if (port === 6379) continue;
    const child = spawn('redis-server', ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve(true);
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
      child.once('error', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      child.stdout!.resume();
      child.stderr!.resume();
      return { port, child };
    }
    child.kill('SIGKILL');
    if (attempt === 4) throw new Error(`redis-server did not start:\n${output}`);
  }
  throw new Error('unreachable');
}

async function stopRedis(redis: RedisProcess): Promise<void> {
  if (redis.child.exitCode !== null || redis.child.signalCode !== null) return;
  const exited = once(redis.child, 'exit');
  redis.child.kill('SIGTERM');
  const timer = setTimeout(() => redis.child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

// ---------------------------------------------------------------------------------------------
// Redis clients and counters
// ---------------------------------------------------------------------------------------------

const allClients: Redis[] = [];
let messagesDelivered = 0; // pub/sub messages received by any subscriber connection of the bench

function redisClient(port: number, name: string, subscriber = false): Redis {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    connectionName: name,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true, // connect-time only; the bench waits for 'ready' before use
    retryStrategy: () => null, // a bench does not reconnect: fail loudly
  });
  client.on('error', (err: Error) => {
    if (!shuttingDown) console.error(`redis ${name}: ${err.message}`);
  });
  if (subscriber) client.on('messageBuffer', () => messagesDelivered++);
  allClients.push(client);
  return client;
}

interface ServerStats {
  commands: Map<string, number>;
  netBytes: number;
}

async function serverStats(client: Redis): Promise<ServerStats> {
  const info = (await client.info('commandstats', 'stats')) as string;
  const commands = new Map<string, number>();
  let netBytes = 0;
  for (const line of info.split('\r\n')) {
    const cmd = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (cmd) commands.set(cmd[1]!, Number(cmd[2]));
    const net = /^total_net_(?:input|output)_bytes:(\d+)/.exec(line);
    if (net) netBytes += Number(net[1]);
  }
  return { commands, netBytes };
}

function commandDelta(before: ServerStats, after: ServerStats): Map<string, number> {
  const delta = new Map<string, number>();
  for (const [name, calls] of after.commands) {
    if (name === 'info') continue; // our own measurement
    const d = calls - (before.commands.get(name) ?? 0);
    if (d > 0) delta.set(name, d);
  }
  return delta;
}

// ---------------------------------------------------------------------------------------------
// A node: Socket.IO server with the Redis adapter, a pub/sub bus, and its local sessions
// ---------------------------------------------------------------------------------------------

let shuttingDown = false;

class PushNode {
  readonly sockets = new Map<string, ServerSocket>();
  readonly clients: ClientSocket[] = [];
  /** Requests this node handled for other nodes (bus or adapter): who receives every push. */
  handled = 0;
  /** Failure-probe switch: a hung node stays subscribed but never answers. */
  hung = false;
  private readonly pending = new Map<string, { resolve: (reply: BusReply) => void; timer: NodeJS.Timeout }>();
  private seq = 0;
  private http!: HttpServer;
  io!: NodeServer;
  url = '';

  constructor(
    readonly id: string,
    private readonly prefix: string,
    private readonly busPub: Redis,
    private readonly busSub: Redis,
    private readonly adapterPub: Redis,
    private readonly adapterSub: Redis,
    private readonly requestsTimeout: number,
  ) {}

  private channel(nodeId: string): string {
    return `${this.prefix}bus:${nodeId}`;
  }

  async start(): Promise<void> {
    await Promise.all(
      [this.busPub, this.busSub, this.adapterPub, this.adapterSub].map((c) => (c.status === 'ready' ? undefined : once(c, 'ready'))),
    );
    this.http = createServer();
    this.io = new Server(this.http, {
      serveClient: false,
      transports: ['websocket'],
      adapter: createAdapter(this.adapterPub, this.adapterSub, { key: `${this.prefix}sio`, requestsTimeout: this.requestsTimeout }),
    });
    this.io.on('connection', (socket) => {
      this.sockets.set(socket.id, socket);
      socket.on('disconnect', () => this.sockets.delete(socket.id));
    });
    // Adapter option: every other node gets every request and must answer it.
    this.io.on('push', (payload, cb) => {
      this.handled++;
      if (this.hung) return;
      const mine = payload.sessionIds.filter((id) => this.sockets.has(id));
      void this.deliverLocal(mine, payload.event, payload.data, payload.ackTimeoutMs).then((deliveries) =>
        cb({ id: payload.id, node: this.id, deliveries }),
      );
    });
    // Pub/sub option: requests and replies on this node's own channel.
    await this.busSub.subscribe(this.channel(this.id));
    this.busSub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.onBusMessage(message));
    this.http.listen(0, '127.0.0.1');
    await once(this.http, 'listening');
    this.url = `http://127.0.0.1:${(this.http.address() as AddressInfo).port}`;
  }

  async connectSessions(count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const client = connectClient(this.url, { transports: ['websocket'], reconnection: false, forceNew: true });
      client.on(EVENT, (_data: unknown, ack: (ackData: unknown) => void) => ack({ ok: true }));
      await new Promise<void>((resolve, reject) => {
        client.once('connect', resolve);
        client.once('connect_error', reject);
      });
      this.clients.push(client);
    }
    while (this.sockets.size < this.clients.length) await new Promise((r) => setTimeout(r, 5));
  }

  get sessionIds(): string[] {
    return [...this.sockets.keys()];
  }

  /** The floor and the remote end of both options: one emit with ack per session, all in parallel. */
  deliverLocal(sessionIds: readonly string[], event: string, data: unknown, ackTimeoutMs: number): Promise<Delivery[]> {
    return Promise.all(
      sessionIds.map(
        (sessionId) =>
          new Promise<Delivery>((resolve) => {
            const socket = this.sockets.get(sessionId);
            if (!socket) return resolve({ sessionId, status: 'offline', latencyUs: 0, ackData: null });
            const started = performance.now();
            socket.timeout(ackTimeoutMs).emit(event, data, (err: Error | null, ackData: unknown) =>
              resolve({
                sessionId,
                status: err ? 'timeout' : 'acked',
                latencyUs: Math.round((performance.now() - started) * 1000),
                ackData: err ? null : ackData,
              }),
            );
          }),
      ),
    );
  }

  private onBusMessage(message: Buffer): void {
    const msg = JSON.parse(message.toString()) as BusRequest | BusReply;
    if ('deliveries' in msg) {
      const waiting = this.pending.get(msg.id);
      if (!waiting) return; // late reply after a timeout
      this.pending.delete(msg.id);
      clearTimeout(waiting.timer);
      waiting.resolve(msg);
      return;
    }
    this.handled++;
    if (this.hung) return;
    void this.deliverLocal(msg.sessionIds, msg.event, msg.data, msg.ackTimeoutMs)
      .then((deliveries) => this.busPub.publish(this.channel(msg.from), JSON.stringify({ id: msg.id, deliveries } satisfies BusReply)))
      .catch((err: unknown) => {
        if (!shuttingDown) throw err;
      });
  }

  /** Pub/sub caller: one request per owning node; each node's outcome is known by request id. */
  async pushViaBus(byNode: ReadonlyMap<string, readonly string[]>, ackTimeoutMs: number, graceMs = REPLY_GRACE_MS): Promise<Delivery[]> {
    const perNode = await Promise.all(
      [...byNode].map(async ([nodeId, sessionIds]): Promise<Delivery[]> => {
        const id = `${this.id}:${++this.seq}`;
        const reply = new Promise<BusReply | undefined>((resolve) => {
          const timer = setTimeout(() => {
            this.pending.delete(id);
            resolve(undefined);
          }, ackTimeoutMs + graceMs);
          this.pending.set(id, { resolve, timer });
        });
        const request: BusRequest = { id, from: this.id, sessionIds: [...sessionIds], event: EVENT, data: DATA, ackTimeoutMs };
        const receivers = await this.busPub.publish(this.channel(nodeId), JSON.stringify(request));
        if (receivers === 0) {
          // Nobody subscribed to that node's channel: the node is down. Known after one round trip.
          const waiting = this.pending.get(id);
          if (waiting) {
            clearTimeout(waiting.timer);
            this.pending.delete(id);
          }
          return sessionIds.map((sessionId) => ({ sessionId, status: 'node_unreachable', latencyUs: 0, ackData: null }));
        }
        const answer = await reply;
        if (!answer) return sessionIds.map((sessionId) => ({ sessionId, status: 'node_timeout', latencyUs: 0, ackData: null }));
        return answer.deliveries;
      }),
    );
    return perNode.flat();
  }

  /** Adapter caller: one broadcast; resolves with one anonymous reply per node that the NUMSUB counted. */
  async pushViaAdapter(sessionIds: readonly string[], ackTimeoutMs: number): Promise<BusReply[]> {
    const payload: BusRequest = {
      id: `${this.id}:${++this.seq}`,
      from: this.id,
      sessionIds: [...sessionIds],
      event: EVENT,
      data: DATA,
      ackTimeoutMs,
    };
    return this.io.serverSideEmitWithAck('push', payload);
  }

  async close(): Promise<void> {
    for (const client of this.clients) client.close();
    for (const { timer } of this.pending.values()) clearTimeout(timer);
    this.pending.clear();
    await new Promise<void>((resolve) => this.io.close(() => resolve()));
    await Promise.all([this.busPub, this.busSub, this.adapterPub, this.adapterSub].map((c) => quit(c)));
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

let nodeCount = 0;
async function startNode(
  port: number,
  topology: string,
  name: string,
  requestsTimeout = ACK_TIMEOUT_MS + REPLY_GRACE_MS,
): Promise<PushNode> {
  const id = `${name}-${++nodeCount}`;
  const prefix = `bench:${topology}:`;
  const node = new PushNode(
    id,
    prefix,
    redisClient(port, `${id}-bus-pub`),
    redisClient(port, `${id}-bus-sub`, true),
    redisClient(port, `${id}-sio-pub`),
    redisClient(port, `${id}-sio-sub`, true),
    requestsTimeout,
  );
  await node.start();
  return node;
}

// ---------------------------------------------------------------------------------------------
// Topologies and variants
// ---------------------------------------------------------------------------------------------

interface Topology {
  readonly name: string;
  readonly caller: PushNode;
  readonly remotes: PushNode[];
  readonly sessions: number;
}

async function buildTopology(port: number, name: string, sessionsPerRemote: number[]): Promise<Topology> {
  const caller = await startNode(port, name, 'caller');
  const remotes: PushNode[] = [];
  for (let i = 0; i < sessionsPerRemote.length; i++) {
    const node = await startNode(port, name, `remote${i}`);
    await node.connectSessions(sessionsPerRemote[i]!);
    remotes.push(node);
  }
  return { name, caller, remotes, sessions: sessionsPerRemote.reduce((a, b) => a + b, 0) };
}

type OptionName = 'floor' | 'pubsub' | 'adapter';

interface Variant {
  readonly topology: Topology;
  readonly option: OptionName;
  readonly push: () => Promise<void>;
  latencies: number[];
  rates: number[];
  calls: number;
  commands: Map<string, number>;
  messages: number;
  bytes: number;
  handled: number;
}

function expectAcked(variant: string, deliveries: Delivery[], sessions: number): void {
  let acked = 0;
  for (const d of deliveries) if (d.status === 'acked') acked++;
  if (acked !== sessions || deliveries.length !== sessions) {
    throw new Error(`${variant}: expected ${sessions} acked deliveries, got ${acked} of ${deliveries.length}`);
  }
}

function variants(t: Topology): Variant[] {
  const owners = t.remotes.filter((n) => n.sockets.size > 0);
  const byNode = new Map(owners.map((n) => [n.id, n.sessionIds] as const));
  const allIds = owners.flatMap((n) => n.sessionIds);
  const make = (option: OptionName, push: () => Promise<void>): Variant => ({
    topology: t,
    option,
    push,
    latencies: [],
    rates: [],
    calls: 0,
    commands: new Map(),
    messages: 0,
    bytes: 0,
    handled: 0,
  });
  const label = (o: string): string => `${t.name}/${o}`;
  return [
    make('floor', async () => {
      const deliveries = (await Promise.all(owners.map((n) => n.deliverLocal(byNode.get(n.id)!, EVENT, DATA, ACK_TIMEOUT_MS)))).flat();
      expectAcked(label('floor'), deliveries, t.sessions);
    }),
    make('pubsub', async () => {
      expectAcked(label('pubsub'), await t.caller.pushViaBus(byNode, ACK_TIMEOUT_MS), t.sessions);
    }),
    make('adapter', async () => {
      const replies = await t.caller.pushViaAdapter(allIds, ACK_TIMEOUT_MS);
      expectAcked(
        label('adapter'),
        replies.flatMap((r) => r.deliveries),
        t.sessions,
      );
    }),
  ];
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

async function sequential(v: Variant, calls: number, record: boolean): Promise<void> {
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await v.push();
    if (record) v.latencies.push(performance.now() - started);
  }
}

async function throughput(v: Variant, calls: number): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next++ < calls) await v.push();
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return calls / ((performance.now() - started) / 1000);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function handledBy(t: Topology): number {
  return t.remotes.reduce((sum, n) => sum + n.handled, 0) + t.caller.handled;
}

/** A sequential batch with Redis counters around it (INFO runs outside the timed loop). */
async function measuredBatch(admin: Redis, v: Variant, calls: number, infoOverheadBytes: number): Promise<void> {
  const before = await serverStats(admin);
  const messagesBefore = messagesDelivered;
  const handledBefore = handledBy(v.topology);
  await sequential(v, calls, true);
  const after = await serverStats(admin);
  for (const [name, n] of commandDelta(before, after)) v.commands.set(name, (v.commands.get(name) ?? 0) + n);
  v.bytes += after.netBytes - before.netBytes - infoOverheadBytes;
  v.messages += messagesDelivered - messagesBefore;
  v.handled += handledBy(v.topology) - handledBefore;
  v.calls += calls;
}

// ---------------------------------------------------------------------------------------------
// Failure signalling probe: what the caller learns when a remote node is hung or gone
// ---------------------------------------------------------------------------------------------

async function failureProbe(port: number): Promise<string[]> {
  const lines: string[] = [];
  const probeAck = 100;
  const probeGrace = 150;
  const requestsTimeout = probeAck + probeGrace; // same budget for both options
  const caller = await startNode(port, 'probe', 'caller', requestsTimeout);
  const a = await startNode(port, 'probe', 'nodeA', requestsTimeout);
  const b = await startNode(port, 'probe', 'nodeB', requestsTimeout);
  await a.connectSessions(2);
  await b.connectSessions(2);
  const byNode = new Map([
    [a.id, a.sessionIds],
    [b.id, b.sessionIds],
  ]);
  const all = [...a.sessionIds, ...b.sessionIds];
  const summarize = (ds: Delivery[]): string => {
    const counts = new Map<string, number>();
    for (const d of ds) counts.set(d.status, (counts.get(d.status) ?? 0) + 1);
    return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
  };
  const timed = async <T>(fn: () => Promise<T>): Promise<[T | Error, number]> => {
    const started = performance.now();
    try {
      const value = await fn();
      return [value, performance.now() - started];
    } catch (err) {
      return [err as Error, performance.now() - started];
    }
  };
  const adapterOutcome = (result: BusReply[] | Error, expected = all.length): string => {
    const replies = result instanceof Error ? (((result as Error & { responses?: BusReply[] }).responses ?? []) as BusReply[]) : result;
    const from = replies.map((r) => r.node ?? '?').join(', ') || 'none';
    const head = result instanceof Error ? `rejects "${result.message}"` : `resolves with ${replies.length} replies, no error`;
    const deliveries = replies.flatMap((r) => r.deliveries);
    return `${head}; replies from: ${from}; ${summarize(deliveries)}, ${expected - deliveries.length} of ${expected} sessions with no outcome at all`;
  };

  lines.push(
    `Failure signalling (2 remote nodes × 2 sessions; ackTimeoutMs ${probeAck}; pub/sub waits ackTimeoutMs + ${probeGrace} ms per node, adapter requestsTimeout ${requestsTimeout} ms)`,
  );
  a.hung = true; // subscribed, receives, never answers (stuck event loop, deadlocked handler…)
  let [bus, ms] = await timed(() => caller.pushViaBus(byNode, probeAck, probeGrace));
  lines.push(
    `  node A hung, pubsub : after ${ms.toFixed(0)} ms: ${bus instanceof Error ? bus.message : summarize(bus)} — per-node request ids say it was A`,
  );
  let [adp, ms2] = await timed(() => caller.pushViaAdapter(all, probeAck));
  lines.push(`  node A hung, adapter: after ${ms2.toFixed(0)} ms: ${adapterOutcome(adp)}`);
  a.hung = false;

  // B holds none of this user's sessions; only A's are pushed. B hangs.
  const onlyA = new Map([[a.id, a.sessionIds]]);
  b.hung = true;
  const [busA, msA] = await timed(() => caller.pushViaBus(onlyA, probeAck, probeGrace));
  lines.push(
    `  non-owner B hung, pubsub : after ${msA.toFixed(1)} ms: ${busA instanceof Error ? busA.message : summarize(busA)} — B is never asked`,
  );
  const [adpA, msA2] = await timed(() => caller.pushViaAdapter(a.sessionIds, probeAck));
  lines.push(`  non-owner B hung, adapter: after ${msA2.toFixed(0)} ms: ${adapterOutcome(adpA, a.sessionIds.length)}`);
  b.hung = false;

  await a.close(); // gone: its subscriptions are gone with it
  [bus, ms] = await timed(() => caller.pushViaBus(byNode, probeAck, probeGrace));
  lines.push(
    `  node A gone, pubsub : after ${ms.toFixed(1)} ms: ${bus instanceof Error ? bus.message : summarize(bus)} — PUBLISH to A returned 0 receivers`,
  );
  [adp, ms2] = await timed(() => caller.pushViaAdapter(all, probeAck));
  lines.push(`  node A gone, adapter: after ${ms2.toFixed(1)} ms: ${adapterOutcome(adp)} — NUMSUB just counts one node fewer`);
  await caller.close();
  await b.close();
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

let redisProcess: RedisProcess | undefined;

async function main(): Promise<void> {
  const benchStarted = performance.now();
  redisProcess = await startRedis();
  const port = redisProcess.port;
  const admin = redisClient(port, 'bench-admin');
  await once(admin, 'ready');

  const topologies = [
    await buildTopology(port, '1 sess', [1]),
    await buildTopology(port, '10 sess', [10]),
    await buildTopology(port, '3n 5+5', [5, 5]),
    await buildTopology(port, '3n 10+0', [10, 0]),
  ];
  const all = topologies.flatMap(variants);

  // Cost of the two INFO calls around a batch, subtracted from the byte counts.
  const probeA = await serverStats(admin);
  const probeB = await serverStats(admin);
  const infoOverheadBytes = probeB.netBytes - probeA.netBytes;

  for (const v of all) {
    await sequential(v, WARMUP, false);
    await throughput(v, WARMUP);
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? all : [...all].reverse();
    for (const v of order) {
      await measuredBatch(admin, v, CALLS, infoOverheadBytes);
      v.rates.push(await throughput(v, TPUT_CALLS));
    }
  }

  const probe = await failureProbe(port);

  // Report
  const pad = (s: string, n: number): string => s.padStart(n);
  console.log(
    `Cross-node PushToUser round trip, private redis-server ${port}; ${ROUNDS} rounds × ${CALLS} sequential calls (${ROUNDS * CALLS} per variant) ` +
      `+ ${TPUT_CALLS} calls at concurrency ${CONCURRENCY}; all nodes and clients share this one process.`,
  );
  console.log(
    'topology  option     p50 ms  p99 ms  +p50 ms  p50×fl  p99×fl  calls/s  tput×fl  cmds/push  msgs/push  bytes/push  handled/push',
  );
  const breakdowns: string[] = [];
  for (const t of topologies) {
    const floor = all.find((v) => v.topology === t && v.option === 'floor')!;
    const fp50 = percentile(floor.latencies, 50);
    const fp99 = percentile(floor.latencies, 99);
    const frate = percentile(floor.rates, 50);
    for (const v of all.filter((x) => x.topology === t)) {
      const p50 = percentile(v.latencies, 50);
      const p99 = percentile(v.latencies, 99);
      const rate = percentile(v.rates, 50);
      const cmds = [...v.commands.values()].reduce((a, b) => a + b, 0) / v.calls;
      console.log(
        `${t.name.padEnd(9)} ${v.option.padEnd(8)}` +
          `${pad(p50.toFixed(3), 8)}${pad(p99.toFixed(3), 8)}${pad((p50 - fp50).toFixed(3), 9)}${pad((p50 / fp50).toFixed(2), 8)}${pad((p99 / fp99).toFixed(2), 8)}` +
          `${pad(rate.toFixed(0), 9)}${pad((rate / frate).toFixed(2), 9)}` +
          `${pad(cmds.toFixed(2), 11)}${pad((v.messages / v.calls).toFixed(2), 11)}${pad((v.bytes / v.calls).toFixed(0), 12)}${pad((v.handled / v.calls).toFixed(2), 14)}`,
      );
      if (v.commands.size > 0) {
        const parts = [...v.commands].map(([name, n]) => `${name} ${(n / v.calls).toFixed(2)}`).join(', ');
        breakdowns.push(`  ${t.name}/${v.option}: ${parts}`);
      }
    }
  }
  console.log('Redis commands per push (INFO commandstats deltas):');
  for (const line of breakdowns) console.log(line);
  console.log(
    'Columns: +p50 = p50 added over the floor; ×fl = ratio to the floor of the same topology; msgs/push = pub/sub messages delivered to subscriber connections; ' +
      'bytes/push = redis-server network in+out; handled/push = requests a node handled for others.',
  );
  for (const line of probe) console.log(line);
  console.log(`(bench took ${((performance.now() - benchStarted) / 1000).toFixed(1)} s)`);

  for (const t of topologies) for (const n of [t.caller, ...t.remotes]) await n.close();
}

async function shutdown(): Promise<void> {
  shuttingDown = true;
  await Promise.all(allClients.map((c) => quit(c)));
  if (redisProcess) await stopRedis(redisProcess);
}

// Never leave the private redis-server behind, whatever happens.
process.on('exit', () => {
  if (redisProcess && redisProcess.child.exitCode === null && redisProcess.child.signalCode === null) redisProcess.child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    shuttingDown = true;
    console.error(`${signal}: stopping`);
    void (redisProcess ? stopRedis(redisProcess) : Promise.resolve()).finally(() => process.exit(130));
  });
}
// Interrupted mid-run, in-flight Redis calls reject with "Connection is closed": expected then.
process.on('unhandledRejection', (err) => {
  if (shuttingDown) return;
  console.error('unhandled rejection:', err);
  process.exitCode = 1;
  void shutdown();
});

main()
  .then(shutdown)
  .catch(async (err: unknown) => {
    if (shuttingDown) return;
    console.error(err);
    await shutdown().catch(() => undefined);
    process.exitCode = 1;
  });
