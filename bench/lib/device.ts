/**
 * A device process: many Socket.IO v4 sessions as raw `ws` websockets (engine.io framing by hand:
 * `0{..}` open, `40{auth}` connect, `2`/`3` ping/pong, `42<id>[..]` event, `43<id>[..]` ack), so
 * thousands of sessions cost the load generator little and never share the server's process.
 * Every event that asks for an ack is acked at once with {"ok":true}. Driven over IPC (children.ts).
 */
import { WebSocket } from 'ws';
import { signToken } from '../../test/support/tokens.js';
import { serve } from './children.js';

interface Session {
  readonly ws: WebSocket;
  readonly connected: Promise<void>;
}

const sessions = new Set<Session>();
let acks = 0;

function open(url: string, auth: Record<string, string>, localAddress: string | undefined): Session {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`, {
    perMessageDeflate: false,
    ...(localAddress !== undefined && { localAddress }),
  });
  const connected = new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('close', () => reject(new Error('closed before the Socket.IO connect')));
    ws.on('message', (raw: Buffer) => {
      const text = raw.toString();
      if (text === '2') return ws.send('3');
      if (text.startsWith('42')) {
        // 42<id>[...]: an event; digits before the array are the ack id.
        let end = 2;
        while (text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
        if (end > 2) {
          ws.send(`43${text.slice(2, end)}[{"ok":true}]`);
          acks++;
        }
        return;
      }
      if (text.startsWith('0{')) return ws.send(`40${JSON.stringify(auth)}`);
      if (text.startsWith('40')) return resolve();
      if (text.startsWith('44')) reject(new Error(`refused: ${text.slice(2)}`));
    });
  });
  connected.catch(() => undefined);
  const session = { ws, connected };
  sessions.add(session);
  ws.on('close', () => sessions.delete(session));
  return session;
}

function close(session: Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.ws.readyState === WebSocket.CLOSED) return resolve();
    session.ws.once('close', () => resolve());
    session.ws.close();
  });
}

async function tokensFor(users: string[]): Promise<string[]> {
  const byUser = new Map<string, string>();
  for (const user of users) if (!byUser.has(user)) byUser.set(user, await signToken(user));
  return users.map((u) => byUser.get(u)!);
}

const CLIENT_TYPES = ['app', 'pc', 'web'];

serve({
  /** Opens one session per entry of `users` (tokens signed first, outside the timing), `concurrency` at a time. */
  async connect(body) {
    const users = body.users as string[];
    const tokens = await tokensFor(users);
    const concurrency = Number(body.concurrency ?? 200);
    const localAddress = body.localAddress as string | undefined;
    let next = 0;
    let failed = 0;
    let firstError = '';
    const started = performance.now();
    const worker = async (): Promise<void> => {
      while (next < users.length) {
        const i = next++;
        try {
          await open(String(body.url), { token: tokens[i]!, clientType: CLIENT_TYPES[i % 3]! }, localAddress).connected;
        } catch (err) {
          failed++;
          firstError ||= (err as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, users.length) }, worker));
    return { ms: performance.now() - started, failed, firstError, open: sessions.size };
  },
  /** Sessions of users churn-<i> connecting and disconnecting at `rate` per second for `durationMs`; each lives `holdMs`. */
  async churn(body) {
    const rate = Number(body.rate);
    const durationMs = Number(body.durationMs);
    const holdMs = Number(body.holdMs ?? 250);
    const count = Math.round((rate * durationMs) / 1000);
    const tokens = await tokensFor(Array.from({ length: count }, (_, i) => `churn-${i}`));
    const started = performance.now();
    let failed = 0;
    const pending: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const session = open(String(body.url), { token: tokens[i]!, clientType: 'app' }, undefined);
      pending.push(
        session.connected.then(
          () => new Promise<void>((r) => setTimeout(() => void close(session).then(r), holdMs)),
          () => {
            failed++;
          },
        ),
      );
    }
    await Promise.all(pending);
    return { connects: count, failed, ms: performance.now() - started };
  },
  async closeAll() {
    const count = sessions.size;
    await Promise.all([...sessions].map(close));
    return { closed: count };
  },
  stats: () => ({ open: sessions.size, acks }),
});
process.send!({ op: 'ready' });
