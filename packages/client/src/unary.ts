import type { ClientUnaryCall, Metadata, ServiceError } from '@grpc/grpc-js';

/** A generated unary method, bound to its client. */
export type Invoke<Req, Res> = (
  request: Req,
  metadata: Metadata,
  options: { deadline: Date },
  callback: (err: ServiceError | null, response: Res) => void,
) => ClientUnaryCall;

/** One attempt of a unary call; the signal cancels it. */
export function once<Req, Res>(
  invoke: Invoke<Req, Res>,
  request: Req,
  metadata: Metadata,
  deadline: number,
  signal: AbortSignal | undefined,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const call = invoke(request, metadata, { deadline: new Date(deadline) }, (err, response) => {
      signal?.removeEventListener('abort', cancel);
      if (err !== null) reject(err);
      else resolve(response);
    });
    const cancel = (): void => call.cancel();
    signal?.addEventListener('abort', cancel, { once: true });
  });
}

/** Every item of a paged listing, page after page, until a page comes with no next token. */
export async function* everyPage<T>(
  page: (pageToken: string) => Promise<{ readonly items: readonly T[]; readonly nextPageToken: string }>,
): AsyncGenerator<T, void, undefined> {
  let pageToken = '';
  do {
    const { items, nextPageToken } = await page(pageToken);
    yield* items;
    pageToken = nextPageToken;
  } while (pageToken !== '');
}
