import type { ServerOptions } from '@grpc/grpc-js';
import type { ApiLimitsConfig } from '../config/config.js';

/**
 * The gRPC server's channel options, each set on purpose (README, Security): the largest request,
 * the calls one connection may hold open, and keepalive so a caller that vanished without closing
 * (half-open TCP) frees its streams; channelz off.
 */
export function grpcServerOptions(limits: ApiLimitsConfig): ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.maxReceiveBytes,
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.keepalive_time_ms': limits.keepaliveMs,
    'grpc.keepalive_timeout_ms': limits.keepaliveTimeoutMs,
    // Channelz keeps per-call counters and traces on every call (about a tenth of a push's CPU in
    // grpc-js); pushgate does not serve the channelz service, so nothing would read them.
    'grpc.enable_channelz': 0,
  };
}
