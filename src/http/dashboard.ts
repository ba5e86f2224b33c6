import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import type { PresenceFeed } from '../domain/presence.js';
import type { PresenceService } from '../domain/presence-service.js';
import type { PushService } from '../domain/push-service.js';
import { PushgateError } from '../errors.js';
import type { OperatorAuth } from './dashboard-auth.js';
import { dashboardPageHtml } from './dashboard-page.js';
import { RecentPresence } from './dashboard-presence.js';
import {
  clientTypesFrom,
  type HttpPushLimits,
  kickRequestFrom,
  pageSizeFrom,
  pushRequestFrom,
  pushResultJson,
  readJsonBody,
  requireUserId,
  sessionJson,
} from './dashboard-requests.js';
import { type Census, type MetricsReader, MetricsSampler, type Rates, RegistryCensus } from './dashboard-stats.js';
import { sendError, sendJson } from './http-status.js';

export interface DashboardDeps {
  readonly nodeId: string;
  readonly push: PushService;
  readonly presence: PresenceService;
  /** The registry's presence feed: its snapshot pages make the census. */
  readonly feed: Pick<PresenceFeed, 'sessionsPage'>;
  readonly auth: OperatorAuth;
  readonly limits: HttpPushLimits;
  /** The node's metrics registry; without it the page shows no rates. */
  readonly metrics?: MetricsReader | undefined;
  /** The cluster's live nodes (lease holders); absent on a single node. */
  readonly liveNodes?: (() => Promise<string[]>) | undefined;
  readonly log: Logger;
  /** Census cap and freshness; the defaults suit production. */
  readonly census?: { readonly maxPages: number; readonly maxAgeMs: number };
}

/** The page shows this many presence events. */
const RECENT_EVENTS = 50;
/** The presence watch closes this long after the last dashboard stopped polling (the page polls every 2 s). */
const PRESENCE_IDLE_MS = 30_000;
/** 20 pages of 1,000: a census reads at most 20,000 sessions, every 3 s at most. */
const CENSUS = { maxPages: 20, maxAgeMs: 3000 };
/** Sessions per page of the user lookup at most. */
const MAX_LOOKUP_PAGE = 100;

const ASSETS: Record<string, { readonly module: string; readonly type: string }> = {
  'uPlot.iife.min.js': { module: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  'uPlot.min.css': { module: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

/**
 * The operator dashboard at /dashboard: a static page (no build step; uPlot served from the
 * package) and its JSON API under /dashboard/api/, every call of which passes the OperatorAuth
 * port first. It reads and acts through the domain services the gRPC API uses — PushService for
 * push, lookup and kick, PresenceService for the events — never around them.
 */
export class Dashboard {
  private readonly census: RegistryCensus;
  private readonly sampler: MetricsSampler | undefined;
  private readonly recent: RecentPresence;
  private readonly assets = new Map<string, Buffer>();

  constructor(private readonly deps: DashboardDeps) {
    this.census = new RegistryCensus(deps.feed, deps.census ?? CENSUS);
    this.sampler = deps.metrics === undefined ? undefined : new MetricsSampler(deps.metrics);
    this.recent = new RecentPresence(deps.presence, { size: RECENT_EVENTS, idleMs: PRESENCE_IDLE_MS }, deps.log);
  }

  /** Answers any request under /dashboard. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/dashboard') {
      if (!isRead(req)) throw new PushgateError('method_not_allowed', `${req.method} is not supported here`);
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        'x-frame-options': 'DENY',
      });
      res.end(dashboardPageHtml({ nodeId: this.deps.nodeId, clientTypes: this.deps.limits.clientTypes }));
      return;
    }
    if (path.startsWith('/dashboard/assets/')) {
      await this.asset(req, res, path.slice('/dashboard/assets/'.length));
      return;
    }
    if (path.startsWith('/dashboard/api/')) {
      const verdict = this.deps.auth.check(req.headers.authorization, req.socket.remoteAddress);
      if ('refusal' in verdict) {
        sendError(res, verdict.refusal);
        return;
      }
      await this.api(req, res, url, path.slice('/dashboard/api/'.length), verdict.caller);
      return;
    }
    throw new PushgateError('not_found', `no route for ${url.pathname}`);
  }

  /** Ends the presence watch (shutdown ends it too, through the presence service). */
  close(): void {
    this.recent.close();
  }

  /** Whether the presence watch is open (tests). */
  get watching(): boolean {
    return this.recent.open;
  }

  private async api(req: IncomingMessage, res: ServerResponse, url: URL, route: string, caller: string): Promise<void> {
    const writes = route === 'push' || route === 'kick';
    const method = writes ? req.method === 'POST' : isRead(req);
    switch (route) {
      case 'overview':
      case 'events':
      case 'sessions':
      case 'push':
      case 'kick':
        if (!method) throw new PushgateError('method_not_allowed', `${req.method} is not supported on /dashboard/api/${route}`);
        break;
      default:
        throw new PushgateError('not_found', `no route for ${url.pathname}`);
    }
    const signal = requestSignal(res);
    switch (route) {
      case 'overview':
        sendJson(res, 200, await this.overview());
        return;
      case 'events': {
        const after = Number(url.searchParams.get('after') ?? '0');
        if (!Number.isSafeInteger(after) || after < 0) throw new PushgateError('invalid_argument', 'after must be a whole number');
        sendJson(res, 200, this.recent.since(after));
        return;
      }
      case 'sessions': {
        const userId = requireUserId(url.searchParams.get('user'));
        const clientTypes = clientTypesFrom(url.searchParams.get('clientTypes'), this.deps.limits.clientTypes);
        const size = pageSizeFrom(url.searchParams.get('pageSize'), MAX_LOOKUP_PAGE);
        const page = await this.deps.push.listSessions(
          userId,
          { clientTypes },
          { size, token: url.searchParams.get('pageToken') ?? '' },
          signal,
        );
        sendJson(res, 200, { sessions: page.sessions.map(sessionJson), nextPageToken: page.nextPageToken });
        return;
      }
      case 'push': {
        const request = pushRequestFrom(await readJsonBody(req, this.deps.limits.maxPayloadBytes), this.deps.limits);
        const pushSignal = AbortSignal.any([signal, AbortSignal.timeout(request.ackTimeoutMs + 5000)]);
        const result = await this.deps.push.push(request, pushSignal);
        this.deps.log.info({ caller, userId: request.userId, event: request.event, messageId: result.messageId }, 'dashboard push');
        sendJson(res, 200, pushResultJson(result));
        return;
      }
      case 'kick': {
        const kick = kickRequestFrom(await readJsonBody(req, 4096));
        const closed = await this.deps.push.disconnect(
          kick.userId,
          { sessionIds: kick.sessionIds },
          kick.reason,
          AbortSignal.any([signal, AbortSignal.timeout(this.deps.limits.maxAckTimeoutMs)]),
        );
        this.deps.log.info({ caller, userId: kick.userId, sessions: closed.length }, 'dashboard kick');
        sendJson(res, 200, { disconnected: closed.map(sessionJson) });
        return;
      }
    }
  }

  private async overview(): Promise<unknown> {
    const [census, rates, leases] = await Promise.all([
      this.census.current(),
      this.sampler?.rates() ?? Promise.resolve<Rates | undefined>(undefined),
      this.deps.liveNodes?.().catch((err: unknown) => {
        this.deps.log.warn({ err }, 'dashboard could not read the live nodes');
        return undefined;
      }),
    ]);
    return {
      nodeId: this.deps.nodeId,
      nodes: nodesOf(this.deps.nodeId, census, leases),
      census: {
        atMs: census.atMs,
        sessions: census.sessions,
        usersOnline: census.usersOnline,
        byNode: census.byNode,
        capped: census.capped,
        pagesRead: census.pagesRead,
      },
      metrics: rates ?? null,
      serverTimeMs: Date.now(),
    };
  }

  private async asset(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const asset = ASSETS[name];
    if (asset === undefined) throw new PushgateError('not_found', `no dashboard asset "${name.slice(0, 64)}"`);
    if (!isRead(req)) throw new PushgateError('method_not_allowed', `${req.method} is not supported here`);
    let body = this.assets.get(name);
    if (body === undefined) {
      body = await readFile(createRequire(import.meta.url).resolve(asset.module));
      this.assets.set(name, body);
    }
    res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'public, max-age=3600', 'content-length': body.length });
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}

/** Every node the page should list: lease holders (cluster mode), this node, and any node holding sessions. */
function nodesOf(self: string, census: Census, leases: string[] | undefined): { id: string; live: boolean | null; sessions: number }[] {
  const ids = new Set([self, ...(leases ?? []), ...Object.keys(census.byNode)]);
  return [...ids].sort().map((id) => ({
    id,
    // null: not known (single node, or the leases could not be read).
    live: leases === undefined ? (id === self ? true : null) : leases.includes(id),
    sessions: Object.values(census.byNode[id] ?? {}).reduce((a, b) => a + b, 0),
  }));
}

function isRead(req: IncomingMessage): boolean {
  return req.method === 'GET' || req.method === 'HEAD';
}

/** Aborts when the client goes away before its answer was sent. */
function requestSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
