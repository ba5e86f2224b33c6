import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Socket } from 'socket.io-client';
import { TestPushClient } from './grpc-client.js';
import { nodeClients } from './socket-client.js';
import { TEST_SECRET } from './tokens.js';
import { waitFor } from './wait.js';

// Real pushgate processes (`node --import tsx src/main.ts`), as an operator runs them, for tests
// that kill, stop or signal a node. Every process started here is SIGKILLed by stopAllNodes() (call
// it in afterEach) and, should a test run end without that, when the test process exits.

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const LIVE_NODES = Symbol.for('pushgate.test.liveNodeProcesses');
/** Starting compiles the sources with tsx: slow on a loaded machine, more so several at once. */
const START_TIMEOUT_MS = 20_000;
const OUTPUT_LIMIT_CHARS = 1_000_000;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A spawned pushgate process, started or not: its output and its exit. */
export interface SpawnedNode {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Set once the process has exited. */
  readonly exit: Exit | undefined;
  /** Resolves when the process has exited. */
  readonly exited: Promise<Exit>;
  /** The complete JSON log lines so far (a line still being written is left for the next look). */
  logLines(): Record<string, unknown>[];
  /** The exit, or a rejection carrying stderr after `timeoutMs`. */
  waitForExit(timeoutMs: number): Promise<Exit>;
  /** Sends a signal if the process still runs; false if it is gone. */
  signal(signal: NodeJS.Signals): boolean;
  /** SIGKILL (works on a stopped process too) and wait for the exit. Idempotent. */
  kill(): Promise<Exit>;
}

/** A started pushgate process: its bound ports, a gRPC client to it, and Socket.IO clients. */
export interface NodeProcess extends SpawnedNode {
  readonly nodeId: string;
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly grpcAddress: string;
  readonly httpUrl: string;
  /** A gRPC client to this node; closed by stop(). */
  readonly client: TestPushClient;
  /** A Socket.IO v4 client of `userId` (valid token) connected to this node; closed by stop(). */
  connect(userId: string, clientType: string): Promise<Socket>;
  /** SIGTERM and wait for the exit (a stopped process is continued first so it sees the signal). */
  terminate(timeoutMs?: number): Promise<Exit>;
  /** Closes the clients and SIGKILLs the process. Idempotent. */
  stop(): Promise<void>;
}

/** Environment of the parent without any pushgate setting, so only what a test sets applies. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PUSHGATE_') && key !== 'REDIS_URL' && key !== 'LOG_LEVEL') env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Spawns `node --import tsx src/main.ts` with `env` on top of loopback free-port defaults and the
 * test secret (override any of them). Does not wait for it to start: see startNodeProcess.
 */
export function spawnNode(env: Record<string, string>, args: readonly string[] = []): SpawnedNode {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: ROOT,
    env: cleanEnv({
      PUSHGATE_GRPC_PORT: '0',
      PUSHGATE_HTTP_PORT: '0',
      PUSHGATE_HOST: '127.0.0.1',
      PUSHGATE_JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'info',
      ...env,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not spawn ${process.execPath}`);
  const pid = child.pid;
  liveNodes.add(child);
  let stdout = '';
  let stderr = '';
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      liveNodes.delete(child);
      resolve(exit);
    });
  });
  child.stdout!.on('data', (chunk: Buffer) => {
    if (stdout.length < OUTPUT_LIMIT_CHARS) stdout += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    if (stderr.length < OUTPUT_LIMIT_CHARS) stderr += chunk.toString();
  });

  const spawned: SpawnedNode = {
    child,
    pid,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get exit() {
      return exit;
    },
    exited,
    logLines() {
      return stdout
        .split('\n')
        .slice(0, -1)
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    async waitForExit(timeoutMs) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`process ${pid} did not exit within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      });
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
    signal(signal) {
      if (exit !== undefined) return false;
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    },
    async kill() {
      spawned.signal('SIGKILL');
      return exited;
    },
  };
  return spawned;
}

/**
 * Starts a pushgate process and resolves once its "pushgate started" log line gives the bound
 * ports. If it exits first, or does not start in time, it is killed and the error carries stderr.
 */
export async function startNodeProcess(env: Record<string, string>, args: readonly string[] = []): Promise<NodeProcess> {
  const spawned = spawnNode(env, args);
  let started: Record<string, unknown>;
  try {
    started = await waitFor(
      'the "pushgate started" log line',
      () => {
        if (spawned.exit !== undefined) {
          throw new Error(`pushgate exited (${JSON.stringify(spawned.exit)}) before it started; stderr:\n${spawned.stderr}`);
        }
        return spawned.logLines().find((line) => line.msg === 'pushgate started');
      },
      { timeoutMs: START_TIMEOUT_MS, intervalMs: 20 },
    );
  } catch (err) {
    await spawned.kill();
    throw new Error(`${(err as Error).message}\nstdout:\n${spawned.stdout.slice(-4000)}\nstderr:\n${spawned.stderr.slice(-4000)}`);
  }
  const grpcPort = started.grpcPort as number;
  const httpPort = started.httpPort as number;
  const grpcAddress = `127.0.0.1:${grpcPort}`;
  const httpUrl = `http://127.0.0.1:${httpPort}`;
  const client = new TestPushClient(grpcAddress);
  const clients = nodeClients(httpUrl);
  let stopped = false;
  const node: NodeProcess = {
    child: spawned.child,
    pid: spawned.pid,
    get stdout() {
      return spawned.stdout;
    },
    get stderr() {
      return spawned.stderr;
    },
    get exit() {
      return spawned.exit;
    },
    exited: spawned.exited,
    logLines: () => spawned.logLines(),
    waitForExit: (timeoutMs) => spawned.waitForExit(timeoutMs),
    signal: (signal) => spawned.signal(signal),
    kill: () => spawned.kill(),
    nodeId: started.nodeId as string,
    grpcPort,
    httpPort,
    grpcAddress,
    httpUrl,
    client,
    connect: clients.connect,
    async terminate(timeoutMs = 10_000) {
      spawned.signal('SIGTERM');
      // A stopped process keeps a SIGTERM pending until it runs again.
      spawned.signal('SIGCONT');
      return spawned.waitForExit(timeoutMs);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clients.closeAll();
      client.close();
      await spawned.kill();
    },
  };
  startedNodes.add(node);
  return node;
}

/** Stops every node process started so far (clients closed, SIGKILL); for afterEach. */
export async function stopAllNodes(): Promise<void> {
  const nodes = [...startedNodes];
  startedNodes.clear();
  await Promise.all(nodes.map((node) => node.stop()));
  // Spawned but never started (or failed to start) ones too.
  await Promise.all(
    [...liveNodes].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

const startedNodes = new Set<NodeProcess>();

/**
 * Every pushgate process spawned here that has not been seen to exit. Process-wide, and killed
 * when the test process exits or is signalled (vitest stops its fork workers with SIGTERM), so no
 * node outlives the test run even if a test crashed before cleaning up. Kept on globalThis so a
 * runner that re-evaluates this module installs the hooks once.
 */
const hooks = globalThis as Record<symbol, unknown>;
hooks[LIVE_NODES] ??= installExitHooks();
const liveNodes = hooks[LIVE_NODES] as Set<ChildProcess>;

function installExitHooks(): Set<ChildProcess> {
  const children = new Set<ChildProcess>();
  const killAll = (): void => {
    for (const child of children) {
      try {
        if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    children.clear();
  };
  process.once('exit', killAll);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Listening replaced the signal's default (exit): restore it unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
  return children;
}
