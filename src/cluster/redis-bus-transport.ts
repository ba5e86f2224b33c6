import type { RedisClient } from '../redis/client.js';
import { describeRedisError } from '../redis/errors.js';
import type { BusTransport } from './bus-transport.js';
import type { ClusterKeys } from './cluster-keys.js';

/**
 * The node bus over Redis sharded pub/sub: each node listens on its own channel
 * (`<prefix>bus:<node id>`). SPUBLISH reports how many subscribers received a message, which is
 * how a request to a node that is not listening fails at once.
 */
export class RedisBusTransport implements BusTransport {
  private channel: string | undefined;
  private onMessage: ((message: string) => void) | undefined;
  private readonly receive = (channel: string, message: string): void => {
    if (channel === this.channel) this.onMessage?.(message);
  };

  constructor(
    private readonly deps: {
      readonly publisher: RedisClient;
      /** A connection of its own: a subscribed connection takes no other commands. */
      readonly subscriber: RedisClient;
      readonly keys: ClusterKeys;
    },
  ) {}

  async listen(nodeId: string, onMessage: (message: string) => void): Promise<void> {
    this.channel = this.deps.keys.busChannel(nodeId);
    this.onMessage = onMessage;
    this.deps.subscriber.on('smessage', this.receive);
    await this.deps.subscriber.ssubscribe(this.channel);
  }

  async send(nodeId: string, message: string): Promise<number> {
    try {
      return (await this.deps.publisher.spublish(this.deps.keys.busChannel(nodeId), message)) as number;
    } catch (err) {
      throw new Error(describeRedisError(err as Error), { cause: err });
    }
  }

  close(): void {
    this.deps.subscriber.off('smessage', this.receive);
    this.onMessage = undefined;
    // Unsubscribed at once, so a request sent meanwhile counts no receiver and fails at once rather
    // than at its timeout (the connection itself closes later in shutdown). Not awaited: a Redis
    // that is away must not hold the shutdown up.
    if (this.channel !== undefined) this.deps.subscriber.sunsubscribe(this.channel).catch(() => undefined);
  }
}
