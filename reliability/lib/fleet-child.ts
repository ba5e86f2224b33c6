/**
 * A fleet process: many Socket.IO v4 sessions as raw `ws` websockets (engine.io framing by hand,
 * as bench/lib/device.ts does, so thousands of sessions cost the load generator little), opted
 * into message metadata, logging the ledger's client side: every event received (and whether it
 * was acked) and every session's life. Driven over IPC by fleet.ts.
 *
 * Given a journal path (argv[2]), it writes each log entry to that file at once instead, as a line
 * `["r"|"s"|"c", entry]`: a process a scenario kills mid-ack then leaves its last entries behind.
 */
import { openSync, writeSync } from 'node:fs';
import { WebSocket } from 'ws';
import { serve } from '../../bench/lib/children.js';
import { signToken } from '../../test/support/tokens.js';
import type { ReceiptRecord, SessionSpan } from './ledger.js';

/**
 * What a session does with a pushed event: ack it (after `ackDelayMs`), ignore it, disconnect
 * as `socket.disconnect()` does (a Socket.IO disconnect packet, then a clean close), or drop the
 * connection without a word (`terminate`: a TCP reset, as a crashed client).
 */
export type OnReceive = 'ack' | 'ignore' | 'disconnect' | 'terminate';

interface Session {
  readonly ws: WebSocket;
  readonly userId: string;
  span: SessionSpan | undefined;
}

let onReceive: OnReceive = 'ack';
let ackDelayMs = 0;
const open = new Set<Session>();
let receipts: ReceiptRecord[] = [];
let spans: SessionSpan[] = [];
/** Sessions closed since the last drain, with when: spans already handed over learn of it here. */
let closures: [string, number][] = [];
/** Delayed acks sent since the last drain ([session id, message id]): the receipt was logged unacked. */
let acksSent: [string, string][] = [];
const tokens = new Map<string, Promise<string>>();
const journal = process.argv[2] === undefined ? undefined : openSync(process.argv[2], 'a');

function log(kind: 'r' | 's' | 'c' | 'a', entry: unknown, memory: unknown[]): void {
  if (journal === undefined) memory.push(entry);
  else writeSync(journal, `${JSON.stringify([kind, entry])}\n`);
}

function tokenFor(userId: string): Promise<string> {
  let token = tokens.get(userId);
  if (token === undefined) {
    token = signToken(userId, { expiresIn: 86_400 });
    tokens.set(userId, token);
  }
  return token;
}

/** Opens one session; resolves with its handshake time, rejects with why it was refused. */
function connect(url: string, userId: string, clientType: string, token: string, localAddress: string | undefined): Promise<number> {
  const started = performance.now();
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
    perMessageDeflate: false,
    ...(localAddress !== undefined && { localAddress }),
  });
  const session: Session = { ws, userId, span: undefined };
  open.add(session);
  return new Promise<number>((resolve, reject) => {
    ws.on('error', (err) => reject(err));
    ws.on('close', () => {
      open.delete(session);
      if (session.span !== undefined) {
        session.span.closedMs = Date.now();
        log('c', [session.span.sessionId, session.span.closedMs], closures);
      }
      reject(new Error('closed before the Socket.IO connect'));
    });
    ws.on('message', (raw: Buffer) => {
      const text = raw.toString();
      if (text === '2') return ws.send('3');
      if (text.startsWith('42')) return receive(session, text);
      if (text.startsWith('0{')) return ws.send(`40${JSON.stringify({ token, clientType, meta: true })}`);
      if (text.startsWith('40')) {
        const { sid } = JSON.parse(text.slice(2)) as { sid: string };
        session.span = { sessionId: sid, userId, connectedMs: Date.now() };
        log('s', session.span, spans);
        return resolve(performance.now() - started);
      }
      if (text.startsWith('44')) return reject(new Error(`refused: ${text.slice(2)}`));
    });
  });
}

/** `42<ack id>["event", data, meta]`: logs it, then acks, ignores or drops as told. */
function receive(session: Session, text: string): void {
  let end = 2;
  while (text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
  const ackId = text.slice(2, end);
  const [, data, meta] = JSON.parse(text.slice(end)) as [string, { to?: string; seq?: number }, { messageId?: string; replay?: boolean }];
  const acks = ackId !== '' && onReceive === 'ack';
  // A delayed ack is logged when it is sent: a session gone before then never acked.
  const delay = ackDelayMs;
  const receipt: ReceiptRecord = {
    sessionId: session.span?.sessionId ?? '',
    userId: session.userId,
    messageId: meta?.messageId ?? '',
    addressedTo: data?.to ?? '',
    seq: data?.seq ?? 0,
    atMs: Date.now(),
    acked: acks && delay === 0,
    replay: meta?.replay === true,
  };
  log('r', receipt, receipts);
  if (onReceive === 'terminate') {
    session.ws.terminate();
  } else if (onReceive === 'disconnect') {
    session.ws.send('41');
    session.ws.close();
  } else if (acks && delay === 0) {
    session.ws.send(`43${ackId}[{"ok":true}]`);
  } else if (acks) {
    ackLater(session, ackId, receipt, delay);
  }
}

function ackLater(session: Session, ackId: string, receipt: ReceiptRecord, delay: number): void {
  setTimeout(() => {
    if (session.ws.readyState !== WebSocket.OPEN) return;
    session.ws.send(`43${ackId}[{"ok":true}]`);
    log('a', [receipt.sessionId, receipt.messageId], acksSent);
  }, delay);
}

function close(session: Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.ws.readyState === WebSocket.CLOSED) return resolve();
    session.ws.once('close', () => resolve());
    session.ws.close();
  });
}

interface Target {
  readonly userId: string;
  readonly clientType: string;
  readonly url: string;
}

serve({
  /**
   * Opens a session per target, at `ratePerSec` (0: as fast as `concurrency` allows); answers
   * with each handshake's time and the refusals.
   */
  async connect(body) {
    const targets = body.targets as Target[];
    const rate = Number(body.ratePerSec ?? 0);
    const concurrency = Number(body.concurrency ?? 100);
    const localAddress = body.localAddress as string | undefined;
    const signed = await Promise.all(targets.map((t) => tokenFor(t.userId)));
    const handshakeMs: number[] = [];
    const errors: string[] = [];
    const started = performance.now();
    let next = 0;
    const one = async (i: number): Promise<void> => {
      const t = targets[i]!;
      try {
        handshakeMs.push(await connect(t.url, t.userId, t.clientType, signed[i]!, localAddress));
      } catch (err) {
        errors.push((err as Error).message);
      }
    };
    if (rate > 0) {
      const pending: Promise<void>[] = [];
      for (let i = 0; i < targets.length; i++) {
        const wait = started + (i * 1000) / rate - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        pending.push(one(i));
      }
      await Promise.all(pending);
    } else {
      const worker = async (): Promise<void> => {
        while (next < targets.length) await one(next++);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker));
    }
    return { handshakeMs, failed: errors.length, firstError: errors[0] ?? '', ms: performance.now() - started };
  },
  /** How sessions answer pushes from now on. */
  behave(body) {
    onReceive = (body.onReceive as OnReceive | undefined) ?? onReceive;
    ackDelayMs = Number(body.ackDelayMs ?? ackDelayMs);
    return {};
  },
  /** Closes `count` sessions (all when absent), oldest first; answers with their ids. */
  async close(body) {
    const chosen = [...open].slice(0, body.count === undefined ? open.size : Number(body.count));
    await Promise.all(chosen.map(close));
    return { closed: chosen.map((s) => s.span?.sessionId ?? '') };
  },
  /** The sessions open now, the clients' ground truth: session id → user id. */
  truth: () => ({ sessions: [...open].filter((s) => s.span !== undefined).map((s) => [s.span!.sessionId, s.userId]) }),
  /** Hands over what was logged since the last drain (so a long soak does not pile it up here). */
  drain() {
    const out = { receipts, spans, closures, acksSent };
    receipts = [];
    spans = [];
    closures = [];
    acksSent = [];
    return out;
  },
  stats: () => ({ open: open.size }),
});
process.send!({ op: 'ready', pid: process.pid });
