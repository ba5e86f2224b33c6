import type { Logger } from 'pino';
import type { ErrorCode } from '../errors.js';

/**
 * Logs refused socket handshakes at info (code, client address, reason: never the token), at most
 * `perSecond` lines a second, so a flood of bad tokens cannot flood the log. Refusals over the
 * budget are counted and the count rides on the next line logged (`suppressed`).
 */
export class RefusalLog {
  private windowStartMs = 0;
  private loggedInWindow = 0;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly perSecond = 10,
    private readonly now: () => number = Date.now,
  ) {}

  refused(code: ErrorCode, address: string, reason: string): void {
    const at = this.now();
    if (at - this.windowStartMs >= 1000) {
      this.windowStartMs = at;
      this.loggedInWindow = 0;
    }
    if (this.loggedInWindow >= this.perSecond) {
      this.suppressed++;
      return;
    }
    this.loggedInWindow++;
    this.log.info({ code, address, reason, ...(this.suppressed > 0 && { suppressed: this.suppressed }) }, 'socket handshake refused');
    this.suppressed = 0;
  }
}
