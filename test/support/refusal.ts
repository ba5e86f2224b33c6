import { isPushgateError, type PushgateError } from '../../src/errors.js';

/**
 * The PushgateError a call rejects with, for tests that check a refusal's code (an expired or
 * malformed cursor, say). Fails if the call resolves, and rethrows any other error as it is.
 */
export async function refusal(promise: Promise<unknown>): Promise<PushgateError> {
  const outcome = await promise.then(
    () => new Error('expected the call to be refused, but it resolved'),
    (err: unknown) => err,
  );
  if (!isPushgateError(outcome)) throw outcome;
  return outcome;
}
