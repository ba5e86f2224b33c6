import { readFileSync } from 'node:fs';
import { type Child, spawnChild } from '../../bench/lib/children.js';
import type { OnReceive } from './fleet-child.js';
import type { ReceiptRecord, SessionSpan } from './ledger.js';

export interface Target {
  readonly userId: string;
  readonly clientType: string;
  /** The node's http://host:port the session connects to. */
  readonly url: string;
}

export interface ConnectReport {
  readonly handshakeMs: number[];
  readonly failed: number;
  readonly firstError: string;
  readonly ms: number;
}

/**
 * Client processes holding the sessions of a scenario (fleet-child.ts), each bound to its own
 * 127.0.0.x so thousands of sessions do not run out of source ports. Keeps the client side of the
 * ledger: `drain()` gathers what every process logged into `receipts` and `spans`.
 */
export class Fleet {
  readonly receipts: ReceiptRecord[] = [];
  private readonly spanById = new Map<string, SessionSpan>();
  private readonly procOf = new Map<string, Child>();
  /** Receipts logged before their (delayed) ack was sent, by session and message. */
  private readonly unacked = new Map<string, ReceiptRecord>();

  /** Journal file and how far it was read, for processes that log to one (`journalDir`). */
  private readonly journals = new Map<Child, { path: string; read: number }>();

  private constructor(readonly procs: readonly Child[]) {}

  /**
   * Starts `processes` client processes. With `journalDir`, each logs to a file there as it goes,
   * so that killing it loses none of its log (use for processes a scenario kills).
   */
  static async start(processes: number, journalDir?: string): Promise<Fleet> {
    const paths = Array.from({ length: processes }, (_, i) =>
      journalDir === undefined ? undefined : `${journalDir}/fleet-${Date.now()}-${i}.jsonl`,
    );
    const procs = paths.map((path) => spawnChild(new URL('./fleet-child.ts', import.meta.url), path === undefined ? [] : [path]));
    await Promise.all(procs.map((p) => p.ready));
    const fleet = new Fleet(procs);
    for (const [i, path] of paths.entries()) if (path !== undefined) fleet.journals.set(procs[i]!, { path, read: 0 });
    return fleet;
  }

  get spans(): SessionSpan[] {
    return [...this.spanById.values()];
  }

  /** Connects every target, spread round-robin over the processes, at `ratePerSec` in all (0: at once). */
  async connect(targets: readonly Target[], options: { ratePerSec?: number; concurrency?: number } = {}): Promise<ConnectReport> {
    const n = this.procs.length;
    const rate = (options.ratePerSec ?? 0) / n;
    const answers = await Promise.all(
      this.procs.map((p, i) =>
        p.request<ConnectReport>(
          'connect',
          {
            targets: targets.filter((_, j) => j % n === i),
            ratePerSec: rate,
            concurrency: options.concurrency ?? 100,
            localAddress: `127.0.0.${2 + (i % 200)}`,
          },
          900_000,
        ),
      ),
    );
    return {
      handshakeMs: answers.flatMap((a) => a.handshakeMs),
      failed: answers.reduce((sum, a) => sum + a.failed, 0),
      firstError: answers.find((a) => a.firstError !== '')?.firstError ?? '',
      ms: Math.max(...answers.map((a) => a.ms)),
    };
  }

  /** How every session answers pushes from now on (a process's sessions all behave alike). */
  async behave(behaviour: { onReceive?: OnReceive; ackDelayMs?: number }, procs: readonly Child[] = this.procs): Promise<void> {
    await Promise.all(procs.map((p) => p.request('behave', behaviour)));
  }

  /** Closes every session (or `count` per process); resolves once their sockets closed. */
  async close(count?: number): Promise<void> {
    await Promise.all(this.procs.map((p) => p.request('close', count === undefined ? {} : { count })));
  }

  /** The clients' ground truth now: open session id → user id. */
  async truth(procs: readonly Child[] = this.procs): Promise<Map<string, string>> {
    const answers = await Promise.all(procs.map((p) => p.request<{ sessions: [string, string][] }>('truth')));
    return new Map(answers.flatMap((a) => a.sessions));
  }

  /** Fetches what the processes logged since the last drain. A killed process's last logs are lost with it. */
  async drain(procs: readonly Child[] = this.procs): Promise<void> {
    const answers = await Promise.all(
      procs.map((p) => (this.journals.has(p) ? this.readJournal(p) : p.request<Drained>('drain', {}, 120_000))),
    );
    for (const [i, { receipts, spans, closures, acksSent }] of answers.entries()) {
      for (const receipt of receipts) {
        this.receipts.push(receipt);
        if (!receipt.acked) this.unacked.set(`${receipt.sessionId} ${receipt.messageId}`, receipt);
      }
      for (const [sessionId, messageId] of acksSent) {
        const key = `${sessionId} ${messageId}`;
        const receipt = this.unacked.get(key);
        if (receipt !== undefined) receipt.acked = true;
        this.unacked.delete(key);
      }
      for (const span of spans) {
        this.spanById.set(span.sessionId, span);
        this.procOf.set(span.sessionId, procs[i]!);
      }
      for (const [sessionId, closedMs] of closures) {
        const span = this.spanById.get(sessionId);
        if (span !== undefined) span.closedMs = closedMs;
      }
    }
  }

  /**
   * Kills a process (SIGKILL) as a client machine dies: its sessions' spans end now, since it
   * cannot log its own end. Without a journal, what it logged after the last drain is lost.
   */
  async kill(proc: Child): Promise<void> {
    if (!this.journals.has(proc)) await this.drain([proc]);
    await proc.kill();
    if (this.journals.has(proc)) await this.drain([proc]);
    const now = Date.now();
    for (const [sessionId, owner] of this.procOf) {
      const span = this.spanById.get(sessionId)!;
      if (owner === proc && span.closedMs === undefined) span.closedMs = now;
    }
  }

  private async readJournal(proc: Child): Promise<Drained> {
    const journal = this.journals.get(proc)!;
    const text = readFileSync(journal.path, 'utf8');
    // Only whole lines: the process may be writing the next one.
    const end = text.lastIndexOf('\n') + 1;
    const out: Drained = { receipts: [], spans: [], closures: [], acksSent: [] };
    for (const line of text.slice(journal.read, end).split('\n')) {
      if (line === '') continue;
      const [kind, entry] = JSON.parse(line) as ['r' | 's' | 'c' | 'a', never];
      if (kind === 'r') out.receipts.push(entry);
      else if (kind === 's') out.spans.push(entry);
      else if (kind === 'a') out.acksSent.push(entry);
      else out.closures.push(entry);
    }
    journal.read = end;
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
  }
}

interface Drained {
  receipts: ReceiptRecord[];
  spans: SessionSpan[];
  closures: [string, number][];
  acksSent: [string, string][];
}
