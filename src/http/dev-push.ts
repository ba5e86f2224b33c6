import type { IncomingMessage, ServerResponse } from 'node:http';
import type { PushService } from '../domain/push-service.js';
import { PushgateError } from '../errors.js';
import { type HttpPushLimits, pushRequestFrom, pushResultJson, readJsonBody } from './dashboard-requests.js';
import { sendJson } from './http-status.js';

/** What POST /dev/push needs: the push service and the limits every push is checked against. */
export interface DevPushDeps {
  readonly push: Pick<PushService, 'push'>;
  readonly limits: HttpPushLimits;
}

/**
 * POST /dev/push `{ user, event, data, … }` (development mode only): the demo page's "Push to me"
 * button. Checked by the same rules as PushToUser and sent through PushService like any push;
 * answers the per-session results.
 */
export async function devPush(req: IncomingMessage, res: ServerResponse, deps: DevPushDeps): Promise<void> {
  if (req.method !== 'POST') throw new PushgateError('method_not_allowed', `${req.method} is not supported on /dev/push; POST JSON`);
  const request = pushRequestFrom(await readJsonBody(req, deps.limits.maxPayloadBytes), deps.limits);
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(request.ackTimeoutMs + 5000)]);
  sendJson(res, 200, pushResultJson(await deps.push.push(request, signal)));
}
