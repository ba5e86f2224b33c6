import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { MAX_USER_ID_LENGTH } from '../domain/session.js';
import { PushgateError } from '../errors.js';
import type { Dashboard } from './dashboard.js';
import { demoPageHtml } from './demo-page.js';
import { type DevPushDeps, devPush } from './dev-push.js';
import { DeviceScript } from './device-script.js';
import { sendError, sendJson } from './http-status.js';

export type NodeStatus = 'ok' | 'draining' | 'registry_unavailable';

/** Why a node is not ready: it drains for shutdown, or (cluster mode) Redis is unreachable or its lease is not held. */
export type NotReadyReason = 'draining' | 'registry_unavailable';

/** The metrics endpoint's content, rendered at each scrape (src/metrics). */
export interface MetricsExposition {
  readonly contentType: string;
  render(): Promise<string>;
}

/** Mints client tokens for the development endpoint (the edge's token verifier, when it holds a secret). */
export interface DevTokens {
  canMint(): boolean;
  mint(userId: string, ttlSeconds: number): Promise<string>;
}

export interface HttpRoutesDeps {
  readonly dev: boolean;
  /** Serve the demo page at `/`; when false, `/` is an unknown route like any other (404). */
  readonly demoPage: boolean;
  readonly nodeId: string;
  readonly clientTypes: readonly string[];
  readonly tokens: DevTokens;
  /** The bound gRPC port, for the demo page's grpcurl command; known once the node has started. */
  readonly grpcPort: () => number | undefined;
  /** Empty when the node takes work (`/readyz` 200, gRPC health SERVING); otherwise why not. */
  readonly notReady: () => readonly NotReadyReason[];
  /** Served at `/metrics` (open, like the probes: counts and timings only); undefined: no such route. */
  readonly metrics: MetricsExposition | undefined;
  readonly log: Logger;
  /** The operator dashboard (/dashboard…); undefined when it is off, and then those paths are 404. Known once the node is built. */
  readonly dashboard?: () => Dashboard | undefined;
  /** The push service behind POST /dev/push (development mode only). Known once the node is built. */
  readonly devPush?: () => DevPushDeps | undefined;
}

const DEV_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * The HTTP side of the edge port: the demo page, the device library it loads (/device.js), the
 * development token endpoint and a liveness probe. Socket.IO attaches to the same server and answers its own path before these routes.
 * Errors go through the one error registry (http-status.ts maps each code to its HTTP status).
 */
export function createHttpServer(deps: HttpRoutesDeps): Server {
  const deviceScript = new DeviceScript();
  return createServer((req, res) => {
    route(req, res, deps, deviceScript).catch((err: unknown) => {
      deps.log.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) sendError(res, err);
    });
  });
}

async function route(req: IncomingMessage, res: ServerResponse, deps: HttpRoutesDeps, deviceScript: DeviceScript): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  // These answer POST too, so they come before the method check.
  const dashboard = deps.dashboard?.();
  if (dashboard !== undefined && (url.pathname === '/dashboard' || url.pathname.startsWith('/dashboard/'))) {
    await dashboard.handle(req, res, url);
    return;
  }
  if (url.pathname === '/dev/push') {
    const push = deps.devPush?.();
    if (!deps.dev || push === undefined) {
      sendError(res, new PushgateError('dev_mode_disabled', 'the development push endpoint is off; it exists only with PUSHGATE_DEV=1'));
      return;
    }
    await devPush(req, res, push);
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(res, new PushgateError('method_not_allowed', `${req.method} is not supported here`));
    return;
  }
  switch (url.pathname) {
    case '/':
      if (!deps.demoPage) break;
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(demoPageHtml({ clientTypes: deps.clientTypes, dev: deps.dev, nodeId: deps.nodeId, grpcAddress: grpcAddressFor(req, deps) }));
      return;
    case '/device.js':
      // Always: a public client library, unlike the demo page, which shows this node's id and gRPC address.
      await deviceScript.send(res);
      return;
    case '/healthz':
    case '/readyz':
      probe(url.pathname, res, deps);
      return;
    case '/metrics':
      if (deps.metrics === undefined) break;
      await sendMetrics(res, deps.metrics);
      return;
    case '/dev/token':
      await devToken(url, res, deps);
      return;
  }
  sendError(res, new PushgateError('not_found', `no route for ${url.pathname}`));
}

/**
 * `/healthz` is liveness: 200 whenever this process answers, draining or not, Redis or not (a
 * liveness probe that failed on a Redis outage would restart every pod at once, and one that failed
 * while draining would cut the drain short). `/readyz` is readiness: 200 only when the node takes
 * work, else 503 with the reasons; gRPC health reports NOT_SERVING exactly then.
 */
function probe(path: string, res: ServerResponse, deps: HttpRoutesDeps): void {
  const reasons = deps.notReady();
  const status = reasons.length === 0 ? 'ok' : reasons.includes('draining') ? 'draining' : 'not_ready';
  if (path === '/healthz') sendJson(res, 200, { status: 'alive', nodeId: deps.nodeId });
  else sendJson(res, reasons.length === 0 ? 200 : 503, { status, reasons, nodeId: deps.nodeId });
}

async function sendMetrics(res: ServerResponse, metrics: MetricsExposition): Promise<void> {
  const body = await metrics.render();
  res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
  res.end(body);
}

async function devToken(url: URL, res: ServerResponse, deps: HttpRoutesDeps): Promise<void> {
  if (!deps.dev) {
    sendError(res, new PushgateError('dev_mode_disabled', 'the development token endpoint is off; it exists only with PUSHGATE_DEV=1'));
    return;
  }
  if (!deps.tokens.canMint()) {
    const refusal = new PushgateError(
      'dev_mode_disabled',
      'tokens cannot be minted with PUSHGATE_JWT_PUBLIC_KEY; mint them with your private key',
    );
    // 409: development mode is on, but this node's key setup cannot serve the endpoint.
    sendError(res, refusal, 409);
    return;
  }
  const userId = url.searchParams.get('user') ?? url.searchParams.get('userId') ?? '';
  if (userId === '' || userId.length > MAX_USER_ID_LENGTH) {
    sendError(res, new PushgateError('invalid_argument', `query parameter "user" must be a user id of 1-${MAX_USER_ID_LENGTH} characters`));
    return;
  }
  const token = await deps.tokens.mint(userId, DEV_TOKEN_TTL_SECONDS);
  sendJson(res, 200, { token, userId, expiresInSeconds: DEV_TOKEN_TTL_SECONDS });
}

/** The gRPC address as this browser would reach it: the host it used for the page, the gRPC port. */
function grpcAddressFor(req: IncomingMessage, deps: HttpRoutesDeps): string | undefined {
  const port = deps.grpcPort();
  if (port === undefined) return undefined;
  const host = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
  return `${host}:${port}`;
}

/** Binds `server` and resolves with the port it got (port 0: one the OS chose). */
export function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
