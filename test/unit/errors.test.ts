import { Writable } from 'node:stream';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, type ErrorCode, isPushgateError, PushgateError } from '../../src/errors.js';
import { GRPC_STATUS, toGrpcError } from '../../src/grpc/status.js';
import { createLogger } from '../../src/logger.js';

const CODES = Object.keys(ERROR_CODES) as ErrorCode[];
const KNOWN_GRPC_STATUSES = new Set(Object.values(GrpcStatus).filter((v): v is number => typeof v === 'number'));

function capturingLogger(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString());
      callback();
    },
  });
  return {
    log: createLogger('trace', stream),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('error registry', () => {
  it('has codes at all', () => {
    expect(CODES.length).toBeGreaterThan(0);
  });

  it.each(CODES)('%s has a description and a gRPC status', (code) => {
    expect(typeof ERROR_CODES[code]).toBe('string');
    expect(ERROR_CODES[code].trim().length).toBeGreaterThan(10);
    expect(Object.hasOwn(GRPC_STATUS, code)).toBe(true);
    expect(KNOWN_GRPC_STATUSES.has(GRPC_STATUS[code])).toBe(true);
    expect(GRPC_STATUS[code]).not.toBe(GrpcStatus.OK);
  });

  it('maps no code that the registry does not know', () => {
    expect(Object.keys(GRPC_STATUS).sort()).toEqual([...CODES].sort());
  });

  it('maps the codes a backend branches on to the expected statuses', () => {
    expect(GRPC_STATUS.invalid_argument).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(GRPC_STATUS.deadline_exceeded).toBe(GrpcStatus.DEADLINE_EXCEEDED);
    expect(GRPC_STATUS.shutting_down).toBe(GrpcStatus.UNAVAILABLE);
    expect(GRPC_STATUS.internal).toBe(GrpcStatus.INTERNAL);
    for (const code of CODES.filter((c) => c.startsWith('token_'))) expect(GRPC_STATUS[code]).toBe(GrpcStatus.UNAUTHENTICATED);
  });

  it('recognises its own errors and only those', () => {
    expect(isPushgateError(new PushgateError('internal', 'x'))).toBe(true);
    expect(isPushgateError(new Error('x'))).toBe(false);
    expect(isPushgateError({ code: 'internal', message: 'x' })).toBe(false);
  });
});

describe('toGrpcError', () => {
  it.each(CODES)('maps a PushgateError %s to its status with the message as details', (code) => {
    const { log } = capturingLogger();
    const err = toGrpcError(new PushgateError(code, `something about ${code}`), log, 'req-1', 'PushToUser');
    expect(err.code).toBe(GRPC_STATUS[code]);
    expect(err.details).toBe(`something about ${code}`);
    expect(err.metadata?.get('pushgate-error-code')).toEqual([code]);
    expect(err.metadata?.get('x-request-id')).toEqual(['req-1']);
  });

  it('maps an arbitrary Error to INTERNAL without leaking its message, but logs it under the request id', () => {
    const { log, lines } = capturingLogger();
    const err = toGrpcError(new Error('ECONNREFUSED 10.0.0.7:6379 password=swordfish'), log, 'req-42', 'ListSessions');
    expect(err.code).toBe(GrpcStatus.INTERNAL);
    expect(err.details).not.toContain('swordfish');
    expect(err.details).not.toContain('ECONNREFUSED');
    expect(err.details).toContain('req-42');
    expect(err.metadata?.get('pushgate-error-code')).toEqual(['internal']);
    const logged = lines();
    expect(logged).toHaveLength(1);
    expect(logged[0]).toMatchObject({ level: 50, requestId: 'req-42', method: 'ListSessions' });
    expect(JSON.stringify(logged[0])).toContain('ECONNREFUSED');
  });

  it('maps a thrown non-Error value to INTERNAL', () => {
    const { log } = capturingLogger();
    const err = toGrpcError('a string was thrown', log, 'req-7', 'PushToUser');
    expect(err.code).toBe(GrpcStatus.INTERNAL);
    expect(err.details).not.toContain('a string was thrown');
  });

  it('logs a caller mistake at info, not as a server fault', () => {
    const { log, lines } = capturingLogger();
    toGrpcError(new PushgateError('invalid_argument', 'user_id is required'), log, 'req-9', 'DisconnectSessions');
    expect(lines()).toEqual([
      expect.objectContaining({ level: 30, requestId: 'req-9', method: 'DisconnectSessions', code: 'invalid_argument' }),
    ]);
  });
});
