/**
 * The wire under the node bus: carries opaque messages to a node by its id. The bus (node-bus.ts)
 * holds everything else — request/reply matching, expiry, cancellation — so the same bus runs on
 * Redis sharded pub/sub in production and on an in-memory network in one-process tests.
 */
export interface BusTransport {
  /** Starts handing the messages addressed to `nodeId` to `onMessage`, in the order they were sent. */
  listen(nodeId: string, onMessage: (message: string) => void): Promise<void>;
  /**
   * Sends a message to `nodeId`; resolves with how many listeners received it (0: nobody listens
   * there, e.g. the node died). Rejects, with a message an operator can act on, when the wire
   * cannot take it.
   */
  send(nodeId: string, message: string): Promise<number>;
  /** Stops listening; pending sends may still complete. Needs no answer from the wire. */
  close(): void;
}
