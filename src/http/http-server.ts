import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { MAX_USER_ID_LENGTH } from '../domain/session.js';
import type { TokenVerifier } from '../edge/token-verifier.js';
import { demoPageHtml } from './demo-page.js';

export type NodeStatus = 'ok' | 'draining' | 'registry_unavailable';

export interface HttpRoutesDeps {
  readonly dev: boolean;
  readonly nodeId: string;
  readonly clientTypes: readonly string[];
  readonly verifier: TokenVerifier;
  /** The bound gRPC port, for the demo page's grpcurl command; known once the node has started. */
  readonly grpcPort: () => number | undefined;
  /** `ok` when the node takes work; otherwise why not (`draining`, `registry_unavailable`). */
  readonly status: () => NodeStatus;
  readonly log: Logger;
}

const DEV_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * The HTTP side of the edge port: the demo page, the development token endpoint and a liveness
 * probe. Socket.IO attaches to the same server and answers its own path before these routes.
 */
export function createHttpServer(deps: HttpRoutesDeps): Server {
  return createServer((req, res) => {
    route(req, res, deps).catch((err: unknown) => {
      deps.log.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) json(res, 500, { error: { code: 'internal', message: 'internal error' } });
    });
  });
}

async function route(req: IncomingMessage, res: ServerResponse, deps: HttpRoutesDeps): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    json(res, 405, { error: { code: 'invalid_argument', message: `${req.method} is not supported here` } });
    return;
  }
  switch (url.pathname) {
    case '/':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(demoPageHtml({ clientTypes: deps.clientTypes, dev: deps.dev, nodeId: deps.nodeId, grpcAddress: grpcAddressFor(req, deps) }));
      return;
    case '/healthz': {
      const status = deps.status();
      json(res, status === 'ok' ? 200 : 503, { status, nodeId: deps.nodeId });
      return;
    }
    case '/dev/token':
      await devToken(url, res, deps);
      return;
    default:
      json(res, 404, { error: { code: 'not_found', message: `no route for ${url.pathname}` } });
  }
}

async function devToken(url: URL, res: ServerResponse, deps: HttpRoutesDeps): Promise<void> {
  if (!deps.dev) {
    json(res, 403, {
      error: { code: 'dev_mode_disabled', message: 'the development token endpoint is off; it exists only with PUSHGATE_DEV=1' },
    });
    return;
  }
  if (!deps.verifier.canMint()) {
    json(res, 409, {
      error: { code: 'dev_mode_disabled', message: 'tokens cannot be minted with PUSHGATE_JWT_PUBLIC_KEY; mint them with your private key' },
    });
    return;
  }
  const userId = url.searchParams.get('user') ?? url.searchParams.get('userId') ?? '';
  if (userId === '' || userId.length > MAX_USER_ID_LENGTH) {
    json(res, 400, { error: { code: 'invalid_argument', message: `query parameter "user" must be a user id of 1-${MAX_USER_ID_LENGTH} characters` } });
    return;
  }
  const token = await deps.verifier.mint(userId, DEV_TOKEN_TTL_SECONDS);
  json(res, 200, { token, userId, expiresInSeconds: DEV_TOKEN_TTL_SECONDS });
}

/** The gRPC address as this browser would reach it: the host it used for the page, the gRPC port. */
function grpcAddressFor(req: IncomingMessage, deps: HttpRoutesDeps): string | undefined {
  const port = deps.grpcPort();
  if (port === undefined) return undefined;
  const host = (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
  return `${host}:${port}`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}
