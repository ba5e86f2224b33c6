import { logVerbosity, setLogger, setLogVerbosity } from '@grpc/grpc-js';
import type { Logger } from 'pino';

/**
 * grpc-js writes its own diagnostics to stderr as plain text (`E No address added out of total 1
 * resolved` when a port is taken), which breaks a JSON log pipeline. Its logger is process-wide,
 * so the composition root routes it once into pino, errors only (its info level is chatty).
 */
export function routeGrpcLogs(log: Logger): void {
  const grpcLog = log.child({ component: 'grpc-js' });
  const line = (args: unknown[]): string => args.map(String).join(' ');
  setLogger({
    error: (...args: unknown[]) => grpcLog.error(line(args)),
    info: (...args: unknown[]) => grpcLog.info(line(args)),
    debug: (...args: unknown[]) => grpcLog.debug(line(args)),
  } as unknown as Partial<Console>);
  setLogVerbosity(logVerbosity.ERROR);
}
