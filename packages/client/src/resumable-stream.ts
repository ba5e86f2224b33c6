/**
 * What every stream that resumes by cursor shares (presence, receipts): an async iterator over
 * the subclass's `run()`, the last cursor delivered, and the ways to end it. `run()` reads
 * `closer` to stop and sets `lastCursor` as it delivers.
 */
export abstract class ResumableStream<T> implements AsyncIterableIterator<T> {
  protected lastCursor: string;
  protected readonly closer = new AbortController();
  // Made on first use: a subclass's own fields are set only after this constructor returns.
  private started: AsyncGenerator<T, void, undefined> | undefined;

  constructor(resumeAfter: string | undefined, maxReconnectAttempts: number | undefined) {
    if (maxReconnectAttempts !== undefined && !(maxReconnectAttempts >= 0)) {
      throw new TypeError(`maxReconnectAttempts must be ≥ 0, got ${maxReconnectAttempts}`);
    }
    this.lastCursor = resumeAfter ?? '';
  }

  /** The cursor of the last event delivered (or the resumeAfter given): save it to resume later, in any process. */
  get cursor(): string {
    return this.lastCursor;
  }

  next(): Promise<IteratorResult<T, void>> {
    return this.iterator.next();
  }

  /** Ends the stream (what `break` in a for-await loop calls). */
  async return(): Promise<IteratorResult<T, void>> {
    this.closer.abort();
    return this.iterator.return(undefined);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the stream from outside the loop: a pending `next()` resolves as done. */
  async close(): Promise<void> {
    this.closer.abort();
    await this.iterator.return(undefined);
  }

  protected abstract run(): AsyncGenerator<T, void, undefined>;

  private get iterator(): AsyncGenerator<T, void, undefined> {
    this.started ??= this.run();
    return this.started;
  }
}
