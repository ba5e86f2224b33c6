import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';

/**
 * The client address of a connection: the peer's address, or, when the peer is one of the trusted
 * proxies, the address that proxy names in X-Forwarded-For (walking back through trusted hops
 * only). A client reaching the node directly cannot pick its address by sending the header. One
 * answer per handshake request, shared by the per-address limits, the refusal log and the
 * session's stored `remoteAddress`.
 */
export class ClientAddresses {
  private readonly trust: (address: string, hop: number) => boolean;
  private readonly resolved = new WeakMap<IncomingMessage, string>();

  constructor(trustedProxies: readonly string[]) {
    this.trust = trustedProxies.length === 0 ? () => false : proxyAddr.compile([...trustedProxies]);
  }

  of(request: IncomingMessage): string {
    let address = this.resolved.get(request);
    if (address === undefined) {
      address = proxyAddr(request, this.trust) ?? '';
      this.resolved.set(request, address);
    }
    return address;
  }
}
