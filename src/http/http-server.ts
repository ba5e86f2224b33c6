import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { MAX_USER_ID_LENGTH } from '../domain/session.js';
import { PushgateError } from '../errors.js';
import { demoPageHtml } from './demo-page.js';
import { sendError, sendJson } from './http-status.js';

export type NodeStatus = 'ok' | 'draining' | 'registry_unavailable';

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
  /** `ok` when the node takes work; otherwise why not (`draining`, `registry_unavailable`). */
  readonly status: () => NodeStatus;
  readonly log: Logger;
}

const DEV_TOKEN_TTL_SECONDS = 24 * 3600;

/**
 * The HTTP side of the edge port: the demo page, the development token endpoint and a liveness
 * probe. Socket.IO attaches to the same server and answers its own path before these routes.
 * Errors go through the one error registry (http-status.ts maps each code to its HTTP status).
 */
export function createHttpServer(deps: HttpRoutesDeps): Server {
  return createServer((req, res) => {
    route(req, res, deps).catch((err: unknown) => {
      deps.log.error({ err, url: req.url }, 'http request failed');
      if (!res.headersSent) sendError(res, err);
    });
  });
}

async function route(req: IncomingMessage, res: ServerResponse, deps: HttpRoutesDeps): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://localhost');
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
    case '/healthz': {
      const status = deps.status();
      sendJson(res, status === 'ok' ? 200 : 503, { status, nodeId: deps.nodeId });
      return;
    }
    case '/dev/token':
      await devToken(url, res, deps);
      return;
  }
  sendError(res, new PushgateError('not_found', `no route for ${url.pathname}`));
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
