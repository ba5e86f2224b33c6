import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { isPubSubMessage, isPushFrame, isSubscribeConfirmation, RespFrameSplitter } from './resp-frames.js';

/**
 * A TCP relay between pushgate nodes and one redis-server that injects the faults of issue 13's
 * reliability suite: a path that silently stops carrying bytes (blackhole), a Redis host that is
 * gone (cut), and a bus that loses pub/sub messages while commands still work (dropBus). Unlike
 * test/support/cluster.ts's startTcpProxy it understands the server's RESP framing, which losing
 * whole messages (not byte ranges that would desync the client) requires.
 */
export interface RedisRelay {
  /** redis://127.0.0.1:<port>: point a node's REDIS_URL here. */
  readonly url: string;
  readonly port: number;
  /** Relayed connections now open. */
  readonly connections: number;
  /** Blackhole: keep accepting TCP (new connections too) but forward nothing either way; bytes are held. */
  blackhole(): void;
  /** Ends a blackhole: held bytes are delivered in order (as a healed network path retransmits). */
  heal(): void;
  /** Resets every connection and refuses new ones until restore() (like a dead Redis host). */
  cut(): Promise<void>;
  restore(): Promise<void>;
  /**
   * Bus loss: discards pub/sub message frames (message, smessage, pmessage; RESP2 arrays on a
   * connection that has subscribed, RESP3 pushes anywhere), each with probability `fraction`
   * (1 = all). Replies to commands, subscribe confirmations included, pass. dropBus(0) stops.
   * Each frame is judged when it reaches the relay, so frames held by a blackhole were judged already.
   */
  dropBus(fraction: number): void;
  /** Message frames discarded by dropBus so far. */
  readonly droppedFrames: number;
  /** Resets every connection and stops listening; resolves once every socket and the server are closed. */
  close(): Promise<void>;
}

export interface RedisRelayOptions {
  /** Drawn once per droppable frame while dropBus(f) has f > 0 (drop if < f); seed it for repeatable runs. */
  random?: () => number;
}

/** One relayed connection: the node's socket, ours to Redis, and what each direction holds. */
interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  /** Splits what Redis sends into frames; one per connection, as framing is per stream. */
  readonly frames: RespFrameSplitter;
  /** Set once Redis confirmed a RESP2 subscribe here: from then on `*3 message` arrays are deliveries. */
  subscribed: boolean;
  /** Bytes held during a blackhole, with the socket each is for, in arrival order. */
  readonly held: [Socket, Buffer][];
  /** Resolves when both sockets have closed. */
  readonly closed: Promise<void>;
}

const HOST = '127.0.0.1';

/** The longest shutdown waits for the sockets it destroyed to report closed. */
const SHUTDOWN_WAIT_MS = 2000;

/** Starts a relay on a free loopback port to the redis-server on `targetPort`. */
export async function startRedisRelay(targetPort: number, options: RedisRelayOptions = {}): Promise<RedisRelay> {
  const random = options.random ?? Math.random;
  const pairs = new Set<Pair>();
  let blackholed = false;
  let dropFraction = 0;
  let droppedFrames = 0;
  let closing = false;

  // Writes now, or holds while blackholed. Pauses the source when the target's buffer is full,
  // so a slow reader does not make the relay buffer without bound outside a blackhole.
  const deliver = (pair: Pair, from: Socket, to: Socket, bytes: Buffer): void => {
    if (bytes.length === 0) return;
    if (blackholed) {
      pair.held.push([to, bytes]);
      return;
    }
    if (!to.write(bytes)) {
      from.pause();
      to.once('drain', () => from.resume());
    }
  };

  /** Redis's bytes without the frames dropBus discards. Always split, so framing stays in step when dropping starts mid-stream. */
  const filter = (pair: Pair, chunk: Buffer): Buffer => {
    const kept: Buffer[] = [];
    for (const frame of pair.frames.push(chunk)) {
      if (isSubscribeConfirmation(frame) && !isPushFrame(frame)) pair.subscribed = true;
      const droppable = isPubSubMessage(frame) && (isPushFrame(frame) || pair.subscribed);
      if (droppable && dropFraction > 0 && random() < dropFraction) droppedFrames++;
      else kept.push(frame);
    }
    return kept.length === 1 ? kept[0]! : Buffer.concat(kept);
  };

  const relay = (client: Socket): void => {
    if (closing) {
      client.destroy();
      return;
    }
    const upstream = createConnection({ host: HOST, port: targetPort });
    const gone = (socket: Socket): Promise<void> => new Promise((resolve) => socket.once('close', () => resolve()));
    const pair: Pair = {
      client,
      upstream,
      frames: new RespFrameSplitter(),
      subscribed: false,
      held: [],
      closed: Promise.all([gone(client), gone(upstream)]).then(() => undefined),
    };
    pairs.add(pair);
    // Either side ending ends both, as a proxy that lost one leg must; `close` follows `error`.
    const end = (): void => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.on('data', (chunk: Buffer) => deliver(pair, client, upstream, chunk));
    upstream.on('data', (chunk: Buffer) => {
      let bytes: Buffer;
      try {
        bytes = filter(pair, chunk);
      } catch (err) {
        // Framing lost: dropping frames from here on could cut replies, so the connection ends
        // loudly (the client sees a reset) rather than relaying a stream we cannot follow.
        client.destroy(err as Error);
        return;
      }
      deliver(pair, upstream, client, bytes);
    });
  };

  let server: Server = createServer(relay);
  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, HOST, () => {
        server.off('error', reject);
        const address = server.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  /** Resets every connection (RST, as from a dead host) and closes the listener; waits for all of it. */
  const shutDown = async (): Promise<void> => {
    const socketsClosed = [...pairs].map((pair) => pair.closed);
    for (const { client, upstream } of pairs) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    pairs.clear();
    const serverClosed = server.listening ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    // Bounded: every socket is destroyed already, and a close event that never came (seen once in a
    // full soak, cause not found) must not hang a whole run.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
    });
    await Promise.race([Promise.all([serverClosed, ...socketsClosed]), late]);
    clearTimeout(timer);
  };

  const port = await listen(0);
  return {
    url: `redis://${HOST}:${port}`,
    port,
    get connections() {
      return pairs.size;
    },
    get droppedFrames() {
      return droppedFrames;
    },
    blackhole() {
      blackholed = true;
    },
    heal() {
      blackholed = false;
      for (const pair of pairs) {
        for (const [to, bytes] of pair.held.splice(0)) {
          deliver(pair, to === pair.client ? pair.upstream : pair.client, to, bytes);
        }
      }
    },
    cut: shutDown,
    async restore() {
      if (server.listening || closing) return;
      // A closed net.Server can listen again, but a fresh one starts without the old one's state.
      server = createServer(relay);
      await listen(port);
    },
    dropBus(fraction) {
      if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`dropBus fraction must be within [0, 1], got ${fraction}`);
      dropFraction = fraction;
    },
    async close() {
      closing = true;
      blackholed = false;
      await shutDown();
    },
  };
}
