import type { BusTransport } from './bus-transport.js';

type Listener = (message: string) => void;

/**
 * An in-memory wire for several nodes' buses in one process: messages are delivered on a later
 * turn of the event loop, in order, as over a network. Faults a test can set: a node `paused`
 * (messages to it wait until `resume`, as for a node stopped with SIGSTOP) and a node `cut` off
 * (its sends fail, as when it cannot reach Redis).
 */
export class MemoryBusNetwork {
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly paused = new Map<string, string[]>();
  private readonly cutOff = new Set<string>();

  /** A transport for one node of this network. */
  transport(): BusTransport {
    return new MemoryBusTransport(this);
  }

  pause(nodeId: string): void {
    if (!this.paused.has(nodeId)) this.paused.set(nodeId, []);
  }

  /** Delivers what waited while the node was paused, in order. */
  resume(nodeId: string): void {
    const waiting = this.paused.get(nodeId) ?? [];
    this.paused.delete(nodeId);
    for (const message of waiting) this.deliver(nodeId, message);
  }

  cut(nodeId: string): void {
    this.cutOff.add(nodeId);
  }

  heal(nodeId: string): void {
    this.cutOff.delete(nodeId);
  }

  /** @internal used by the transports */
  listen(nodeId: string, listener: Listener): () => void {
    const set = this.listeners.get(nodeId) ?? new Set();
    set.add(listener);
    this.listeners.set(nodeId, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(nodeId);
    };
  }

  /** @internal used by the transports */
  send(from: string | undefined, to: string, message: string): number {
    if (from !== undefined && this.cutOff.has(from)) throw new Error(`node ${from} is cut off from the bus`);
    const receivers = this.listeners.get(to)?.size ?? 0;
    if (receivers === 0) return 0;
    const waiting = this.paused.get(to);
    if (waiting !== undefined) waiting.push(message);
    else this.deliver(to, message);
    return receivers;
  }

  private deliver(to: string, message: string): void {
    setImmediate(() => {
      for (const listener of this.listeners.get(to) ?? []) listener(message);
    });
  }
}

class MemoryBusTransport implements BusTransport {
  private nodeId: string | undefined;
  private stop: (() => void) | undefined;

  constructor(private readonly network: MemoryBusNetwork) {}

  async listen(nodeId: string, onMessage: (message: string) => void): Promise<void> {
    this.nodeId = nodeId;
    this.stop = this.network.listen(nodeId, onMessage);
  }

  async send(nodeId: string, message: string): Promise<number> {
    return this.network.send(this.nodeId, nodeId, message);
  }

  close(): void {
    this.stop?.();
    this.stop = undefined;
  }
}
