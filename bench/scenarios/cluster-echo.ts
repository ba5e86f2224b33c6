/**
 * The floor of a cross-node push's bus hops, run as its own process by the `cluster` scenario:
 * bare ioredis on the same private redis-server, SSUBSCRIBEd to one channel, answering every
 * message at once with an SPUBLISH to the channel the message names. The bench process pings it
 * with a message the size of pushgate's request (3 session ids, the same event and data) and the
 * answer is the size of pushgate's reply, so one ping is two sharded pub/sub hops between two
 * processes and nothing else: what a Redis bus cannot go below on this machine.
 */
import { Redis } from 'ioredis';
import { serve } from '../lib/children.js';

const [url, channel] = process.argv.slice(2);
if (url === undefined || channel === undefined) throw new Error('usage: cluster-echo.ts <redis url> <channel>');
const subscriber = new Redis(url);
const publisher = new Redis(url);
subscriber.on('smessage', (_channel: string, message: string) => {
  const request = JSON.parse(message) as { id: string; from: string; body: { sessionIds: string[] } };
  const deliveries = request.body.sessionIds.map((sessionId) => ({
    sessionId,
    status: 'acked',
    latencyUs: 250,
    ackData: { ok: true },
    error: '',
  }));
  void publisher.spublish(request.from, JSON.stringify({ kind: 'reply', id: request.id, from: channel, body: { deliveries } }));
});
await subscriber.ssubscribe(channel);
serve({});
process.send!({ op: 'ready' });
