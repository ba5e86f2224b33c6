import { type DestinationStream, type Logger, pino } from 'pino';

/**
 * JSON logs. Tokens and secrets never reach a log line: handshake data is not logged, and these
 * paths are redacted should an object carrying them be logged by mistake.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'pushgate' },
      redact: {
        paths: ['token', '*.token', 'auth', '*.auth', 'jwtSecret', '*.jwtSecret', 'headers.authorization', '*.headers.authorization'],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
