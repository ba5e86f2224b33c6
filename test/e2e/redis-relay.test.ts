import { createConnection } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisRelay, startRedisRelay } from '../../reliability/lib/redis-relay.js';
import { seededRandom } from '../support/prng.js';
import { startRedis, type TestRedis } from '../support/redis-server.js';
import { waitFor } from '../support/wait.js';

// The reliability suite's fault-injecting relay, between real ioredis clients and a private
// redis-server: commands pass, bus messages are lost on demand, a blackhole holds bytes until it
// heals, a cut refuses connections until restored, and close() leaves nothing open.

/** How long a command must stay unanswered to count as hanging rather than slow (loopback answers in < 1 ms). */
const HANG_MS = 300;

let redis: TestRedis;
const cleanups: (() => unknown)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.stop());
afterEach(async () => {
  for (const step of cleanups.splice(0).reverse()) await step();
});

async function relay(options?: { random?: () => number }): Promise<RedisRelay> {
  const started = await startRedisRelay(redis.port, options);
  cleanups.push(() => started.close());
  return started;
}

function client(url: string, options: RedisOptions = {}): Redis {
  const created = new Redis(url, { retryStrategy: () => 20, ...options });
  // Connection errors are expected here (cuts); without a listener ioredis prints each one.
  created.on('error', () => undefined);
  cleanups.push(() => disconnected(created));
  return created;
}

/** Disconnects `c` and resolves once its socket is closed, so the next test starts with none open. */
async function disconnected(c: Redis): Promise<void> {
  // Between reconnect attempts there is no socket, and ioredis emits no 'end' for that state.
  if (c.status === 'end' || c.status === 'reconnecting') {
    c.disconnect();
    return;
  }
  const ended = new Promise((resolve) => c.once('end', resolve));
  c.disconnect();
  await ended;
}

/** An ioredis client SSUBSCRIBEd through `through` to `channel`, and the messages it got. */
async function subscriber(through: RedisRelay, channel: string, protocol: 2 | 3 = 2): Promise<{ sub: Redis; received: string[] }> {
  const sub = client(through.url, { protocol });
  const received: string[] = [];
  sub.on('smessage', (from: string, message: string) => {
    if (from === channel) received.push(message);
  });
  await sub.ssubscribe(channel);
  return { sub, received };
}

/** Settles once whatever Redis sent `sub` before now has been delivered (or dropped): a PING answered after it. */
const drained = (sub: Redis): Promise<unknown> => sub.ping();

/** Whether `promise` is still unsettled after `ms`. */
async function pendingAfter(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await new Promise((resolve) => setTimeout(resolve, ms));
  return !settled;
}

/** The error code of a plain TCP connect to `port` ('connected' if it was accepted). */
function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe('redis relay', () => {
  it('relays commands', async () => {
    const through = await relay();
    const c = client(through.url);
    expect(await c.set('relay:k', 'v1')).toBe('OK');
    expect(await c.get('relay:k')).toBe('v1');
    expect(through.connections).toBe(1);
  });

  it.each([2, 3] as const)('dropBus(1) loses every smessage but no reply (RESP%i)', async (protocol) => {
    const through = await relay();
    const { sub, received } = await subscriber(through, 'bus:a', protocol);
    const pub = client(through.url);
    // Control: the path delivers while nothing is dropped.
    expect(await pub.spublish('bus:a', 'before')).toBe(1);
    await drained(sub);
    expect(received).toEqual(['before']);

    through.dropBus(1);
    for (let i = 0; i < 20; i++) expect(await pub.spublish('bus:a', `lost-${i}`)).toBe(1);
    // Replies on another relayed connection, and on the subscribed one, still pass.
    expect(await pub.set('relay:dropped', 'still-works')).toBe('OK');
    expect(await pub.get('relay:dropped')).toBe('still-works');
    await drained(sub);
    expect(received).toEqual(['before']);
    expect(through.droppedFrames).toBe(20);

    through.dropBus(0);
    expect(await pub.spublish('bus:a', 'after')).toBe(1);
    await drained(sub);
    expect(received).toEqual(['before', 'after']);
    expect(through.droppedFrames).toBe(20);
  });

  it('dropBus(0.5) drops the messages its random draws pick, about half', async () => {
    const through = await relay({ random: seededRandom(13) });
    const { sub, received } = await subscriber(through, 'bus:half');
    const pub = client(through.url);
    through.dropBus(0.5);
    const sent = Array.from({ length: 200 }, (_, i) => `m${i}`);
    const receivers = await Promise.all(sent.map((message) => pub.spublish('bus:half', message)));
    expect(receivers.every((count) => count === 1)).toBe(true);
    await drained(sub);

    // One draw per message frame, in order: replaying the seed says exactly which were lost.
    const draw = seededRandom(13);
    const expected = sent.filter(() => draw() >= 0.5);
    expect(received).toEqual(expected);
    expect(through.droppedFrames).toBe(sent.length - received.length);
    expect(through.droppedFrames).toBeGreaterThan(70);
    expect(through.droppedFrames).toBeLessThan(130);
  });

  it('rejects a fraction outside [0, 1]', async () => {
    const through = await relay();
    for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => through.dropBus(bad)).toThrow(RangeError);
  });

  it('blackhole() holds bytes both ways, new connections included, until heal()', async () => {
    const through = await relay();
    const c = client(through.url);
    const { received } = await subscriber(through, 'bus:held');
    await c.set('relay:held', 'v1');
    await c.set('relay:held-late', 'late');
    through.blackhole();
    // Separate writes, so the relay holds several chunks and must deliver every one, in order.
    const first = c.get('relay:held');
    expect(await pendingAfter(first, HANG_MS)).toBe(true);
    const set = c.set('relay:held', 'v2');
    expect(await pendingAfter(set, 20)).toBe(true);
    const second = c.get('relay:held');
    // Redis → client is held too: a message published straight to Redis reaches the relay only.
    expect(await client(redis.url).spublish('bus:held', 'while-held')).toBe(1);

    // A connection opened during the blackhole is accepted, but its handshake waits too.
    const late = client(through.url);
    await waitFor('the new connection to be accepted', () => through.connections === 3);
    const lateGet = late.get('relay:held-late');
    expect(await pendingAfter(lateGet, HANG_MS)).toBe(true);
    expect(late.status).toBe('connect');
    expect(received).toEqual([]);

    through.heal();
    expect(await Promise.all([first, set, second, lateGet])).toEqual(['v1', 'OK', 'v2', 'late']);
    await waitFor('the held message', () => received.length > 0);
    expect(received).toEqual(['while-held']);
  });

  it('cut() resets connections and refuses new ones until restore()', async () => {
    const through = await relay();
    const c = client(through.url, { enableOfflineQueue: false });
    await waitFor('the client to connect', () => c.status === 'ready');
    await c.set('relay:cut', 'kept');
    await through.cut();
    expect(through.connections).toBe(0);
    expect(await connectOutcome(through.port)).toBe('ECONNREFUSED');
    await waitFor('the client to notice the cut', () => c.status !== 'ready');
    await expect(c.get('relay:cut')).rejects.toThrow();

    await through.restore();
    await waitFor('the client to reconnect', () => c.status === 'ready');
    expect(await c.get('relay:cut')).toBe('kept');
    expect(through.connections).toBe(1);
  });

  it('close() leaves no socket or server open', async () => {
    const tcpHandles = (): number =>
      process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap' || name === 'TCPServerWrap').length;
    // Nothing in this file keeps a TCP handle between tests, but libuv releases a closed handle a
    // loop turn after its 'close' event, so the previous test's may still be listed.
    await waitFor("the earlier tests' handles to be released", () => tcpHandles() === 0);
    const through = await startRedisRelay(redis.port);
    const c = new Redis(through.url, { retryStrategy: () => null });
    c.on('error', () => undefined);
    const { sub } = await subscriber(through, 'bus:close');
    await c.set('relay:close', 'x');
    through.blackhole();
    const held = c.get('relay:close').catch(() => 'failed');
    await waitFor('the held command to reach the relay', () => through.connections === 2);
    expect(tcpHandles()).toBeGreaterThan(0);

    await through.close();
    expect(through.connections).toBe(0);
    expect(await connectOutcome(through.port)).toBe('ECONNREFUSED');
    expect(await held).toBe('failed');
    await Promise.all([disconnected(c), disconnected(sub)]);
    await waitFor('every TCP handle to be released', () => tcpHandles() === 0, { timeoutMs: 1000 });
  });
});
