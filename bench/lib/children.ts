import { type ChildProcess, fork } from 'node:child_process';

// Bench child processes (servers, device processes) spoken to over IPC: one request at a time
// per op name, answered by a message of the same op. Every child is SIGKILLed when the bench
// exits, fails or is interrupted.

const live = new Set<ChildProcess>();
let hooked = false;

function killAll(): void {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  live.clear();
}

/** Cleanup steps of the whole bench (Redis servers, ...), run on exit and on Ctrl-C too. */
const cleanups: (() => unknown)[] = [];

export function onExit(step: () => unknown): void {
  cleanups.push(step);
}

export async function cleanUp(): Promise<void> {
  killAll();
  for (const step of cleanups.splice(0).reverse()) {
    try {
      await step();
    } catch (err) {
      console.error(`cleanup: ${(err as Error).message}`);
    }
  }
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      void cleanUp().finally(() => process.exit(130));
    });
  }
}

/** Output lines of a child echoed before the rest are only counted: a storm's per-session warnings would bury the tables. */
const ECHOED_LINES = 5;

function echoFew(child: ChildProcess, name: string): void {
  let lines = 0;
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString()).split('\n');
    partial = parts.pop()!;
    for (const line of parts) if (++lines <= ECHOED_LINES) console.log(`[${name}] ${line}`);
  });
  child.once('exit', () => {
    if (lines > ECHOED_LINES) console.log(`[${name}] … ${lines - ECHOED_LINES} more output lines not shown`);
  });
}

export interface Child {
  readonly pid: number;
  /** Sends `{op, ...}` and resolves with the child's answer of the same op (rejects on `{op:'error'}` or exit). */
  request<T = Record<string, unknown>>(op: string, body?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** The first message the child sent (its ready message). */
  readonly ready: Promise<Record<string, unknown>>;
  kill(): Promise<void>;
}

/** Forks `module` (a .ts file) under tsx with `args` and `env` on top of this process's env. */
export function spawnChild(module: URL, args: string[], env: Record<string, string> = {}, execArgv: string[] = []): Child {
  hook();
  const child = fork(module.pathname, args, {
    execArgv: ['--import', 'tsx', ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  if (child.pid === undefined) throw new Error(`could not fork ${module.pathname}`);
  echoFew(child, `${module.pathname.split('/').pop()} ${args.join(' ')}`.trim());
  live.add(child);
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(`${module.pathname} exited (${code ?? signal})`);
    }),
  );
  const ready = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Record<string, unknown>));
    void exited.then((why) => reject(new Error(why)));
  });
  ready.catch(() => undefined);
  return {
    pid: child.pid,
    ready,
    request<T>(op: string, body: Record<string, unknown> = {}, timeoutMs = 120_000) {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => done(new Error(`${op}: no answer in ${timeoutMs} ms`)), timeoutMs);
        const onMessage = (m: Record<string, unknown>): void => {
          if (m.op === op) done(undefined, m as T);
          else if (m.op === 'error') done(new Error(`${op}: ${String(m.message)}`));
        };
        const done = (err?: Error, value?: T): void => {
          clearTimeout(timer);
          child.off('message', onMessage);
          if (err) reject(err);
          else resolve(value!);
        };
        child.on('message', onMessage);
        void exited.then((why) => done(new Error(why)));
        child.send({ op, ...body });
      });
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** In a child: answers each request `{op}` with `{op, ...handler result}` or `{op:'error'}`. */
export function serve(
  handlers: Record<string, (body: Record<string, unknown>) => Promise<Record<string, unknown>> | Record<string, unknown>>,
): void {
  process.on('message', (m: Record<string, unknown>) => {
    const handler = handlers[String(m.op)];
    if (handler === undefined) return void process.send!({ op: 'error', message: `unknown op ${String(m.op)}` });
    Promise.resolve()
      .then(() => handler(m))
      .then(
        (result) => process.send!({ op: m.op, ...result }),
        (err: unknown) => process.send!({ op: 'error', message: (err as Error).stack ?? String(err) }),
      );
  });
  // The parent gone (killed, Ctrl-C): go too.
  process.on('disconnect', () => process.exit(0));
}
