import { type ServiceError, status } from '@grpc/grpc-js';
import { ConfigError } from '../errors.js';

/**
 * The process's exit code says what went wrong, for scripts: a failed call exits with its gRPC
 * status code (0 OK, 3 INVALID_ARGUMENT, 14 UNAVAILABLE, 16 UNAUTHENTICATED, …), and a command
 * line or configuration the CLI cannot use exits 2, as the server does for a bad configuration and
 * as shells do for a usage error. Commander's default (1) would read as CANCELLED. Code 2 is also
 * gRPC's UNKNOWN, which a node never sends on purpose; the stderr line tells the two apart.
 */
export const USAGE_EXIT_CODE = 2;

/** An error the CLI found itself, before or instead of a call: one line, with its exit code. */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    /** What the stderr line starts with: a gRPC status name, or "usage". */
    readonly label: string,
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** A request field the node would refuse too, refused before the call (e.g. --data that is not JSON). */
export function invalidArgument(message: string): CliError {
  return new CliError('INVALID_ARGUMENT', message, status.INVALID_ARGUMENT);
}

export function usageError(message: string): CliError {
  return new CliError('usage', message, USAGE_EXIT_CODE);
}

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number' && 'details' in err;
}

/** What went wrong and how the process exits: the stderr line (without the "pushgate: " prefix) and the code. */
export function describeFailure(err: unknown, hint: (err: ServiceError) => string = () => ''): { line: string; exitCode: number } {
  if (err instanceof CliError) return { line: `${err.label}: ${err.message}`, exitCode: err.exitCode };
  if (err instanceof ConfigError) return { line: `configuration error: ${err.message}`, exitCode: USAGE_EXIT_CODE };
  if (isServiceError(err)) {
    const name = status[err.code] ?? `status ${err.code}`;
    return { line: `${name}: ${oneLine(err.details || err.message)}${hint(err)}`, exitCode: err.code };
  }
  // A fault of the CLI itself: still one line, never a stack trace.
  return { line: `unexpected error: ${oneLine(err instanceof Error ? err.message : String(err))}`, exitCode: 1 };
}

function oneLine(text: string): string {
  // grpc-js ends a refused connection's details with an empty "Resolution note:".
  return text
    .replace(/\s*\n\s*/g, ' ')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
}
