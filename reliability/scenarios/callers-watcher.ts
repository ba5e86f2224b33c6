/**
 * A caller process that opens WatchPresence streams and holds them: the callers scenario freezes
 * it (SIGSTOP) with its streams open, as a backend that hangs without closing its connection, and
 * measures how long the node takes to notice (gRPC keepalive) and free them.
 */
import { credentials } from '@grpc/grpc-js';
import { serve } from '../../bench/lib/children.js';
import { PushServiceClient } from '../../src/gen/pushgate/v1/push_service.js';
import { openWatches, type Watch } from './callers-watch.js';

const held: Watch[] = [];

serve({
  /** Opens `count` streams to `address` on one connection (see openWatches); answers once they are sent. */
  async open(body) {
    const client = new PushServiceClient(String(body.address), credentials.createInsecure());
    const { watches, failed, firstError, ms } = await openWatches(client, Number(body.count), Number(body.snapshotEvery ?? 1));
    held.push(...watches);
    return { opened: watches.length - failed, failed, firstError, ms };
  },
});
process.send!({ op: 'ready', pid: process.pid });
