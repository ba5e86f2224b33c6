import { DASHBOARD_SCRIPT } from './dashboard-script.js';
import { PAGE_BASE_CSS } from './page-style.js';

export interface DashboardPageOptions {
  readonly nodeId: string;
  readonly clientTypes: readonly string[];
}

/**
 * The dashboard's one page: plain HTML and script, no build step; uPlot comes from
 * /dashboard/assets/. Everything from the server or the wire is set as textContent, never as markup.
 * It polls /dashboard/api/overview and /dashboard/api/events every 2 s while open, and sends the
 * operator's key (kept in sessionStorage for the tab) as `Authorization: Bearer`.
 */
export function dashboardPageHtml(options: DashboardPageOptions): string {
  const config = { nodeId: options.nodeId, clientTypes: options.clientTypes };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pushgate dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/assets/uPlot.min.css">
<style>
${PAGE_BASE_CSS}
  main { max-width: 1200px; margin: 0 auto; padding: 20px 24px; display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  input[type=text], input[type=password], input[type=number], textarea { font: inherit; padding: 6px 8px; border: 1px solid #cfd5df; border-radius: 6px; background: #fff; }
  textarea { width: 100%; min-height: 56px; font-family: ui-monospace, monospace; font-size: 12px; }
  button.danger { background: #fff; color: var(--bad); border-color: var(--bad); padding: 2px 10px; }
  table { width: 100%; border-collapse: collapse; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .stats { display: flex; gap: 24px; flex-wrap: wrap; margin-bottom: 10px; }
  .stat b { display: block; font-size: 22px; }
  .stat span { color: var(--muted); font-size: 12px; }
  .note { color: var(--muted); margin: 6px 0; font-size: 12px; }
  .banner { margin: 8px 0; padding: 8px 12px; border-radius: 6px; }
  .status-acked { color: var(--ok); font-weight: 600; }
  .status-timeout, .status-failed, .status-disconnected { color: var(--bad); font-weight: 600; }
  ol { list-style: none; margin: 0; padding: 0; max-height: 320px; overflow: auto; }
  ol li { padding: 2px 0; border-bottom: 1px solid var(--line); font-size: 12px; }
</style>
</head>
<body>
<header><h1>pushgate dashboard</h1><span>node <span id="self"></span></span><span id="updated" class="note"></span></header>
<main>
  <section class="wide" id="auth" hidden>
    <h2>Operator key</h2>
    <p class="note">This node's API needs a key: give one with the <code>admin</code> scope. It is kept for this tab only and sent as <code>Authorization: Bearer</code>.</p>
    <form id="authForm" class="row">
      <label>API key <input type="password" id="key" autocomplete="off" size="48"></label>
      <button type="submit">Use key</button>
    </form>
    <div id="authError" class="banner error" hidden></div>
  </section>
  <div id="error" class="banner error wide" hidden></div>

  <section>
    <h2>Cluster</h2>
    <div class="stats">
      <div class="stat"><b id="sessionsTotal">–</b><span>sessions</span></div>
      <div class="stat"><b id="usersOnline">–</b><span>users online</span></div>
      <div class="stat"><b id="nodeCount">–</b><span>nodes</span></div>
    </div>
    <p id="capped" class="banner notice" hidden></p>
    <table><thead><tr><th>node</th><th>lease</th><th>client type</th><th class="num">sessions</th></tr></thead><tbody id="byNode"></tbody></table>
    <p class="note">Counted from the registry's snapshot pages, at most every 3 s while a dashboard is open.</p>
  </section>

  <section>
    <h2>Pushes and ack latency</h2>
    <div id="noMetrics" class="note" hidden>Metrics are off on this node: no rates to show.</div>
    <table><thead><tr><th>outcome</th><th class="num">pushes/s</th></tr></thead><tbody id="rates"></tbody></table>
    <p class="mono" id="latency">ack latency: –</p>
    <div id="chart"></div>
    <p class="note">Rates over the last ~10 s, sampled by the node from its counters; percentiles interpolated inside the ack latency histogram's buckets over the same window.</p>
  </section>

  <section>
    <h2>Push to a user</h2>
    <form id="pushForm">
      <div class="row">
        <label>User id <input type="text" id="pushUser" autocomplete="off"></label>
        <label>Event <input type="text" id="pushEvent" value="notice" autocomplete="off"></label>
        <label>Client types <input type="text" id="pushClientTypes" placeholder="all" autocomplete="off"></label>
        <label>Ack timeout ms <input type="number" id="pushTimeout" min="0" placeholder="default"></label>
        <label class="inline"><input type="checkbox" id="pushNoAck"> no ack</label>
      </div>
      <label style="margin-top:8px">Data (JSON) <textarea id="pushData" spellcheck="false">{"text":"hello from the dashboard"}</textarea></label>
      <div class="row" style="margin-top:8px"><button type="submit" id="pushButton">Push</button><span id="pushSummary" class="mono"></span></div>
    </form>
    <div id="pushError" class="banner error" hidden></div>
    <table id="pushResults" hidden><thead><tr><th>session</th><th>client</th><th>node</th><th>status</th><th class="num">latency ms</th><th>ack / error</th></tr></thead><tbody></tbody></table>
  </section>

  <section>
    <h2>User lookup</h2>
    <form id="lookupForm" class="row">
      <label>User id <input type="text" id="lookupUser" autocomplete="off"></label>
      <button type="submit">Look up</button>
    </form>
    <div id="lookupError" class="banner error" hidden></div>
    <p id="lookupSummary" class="note"></p>
    <table id="sessions" hidden><thead><tr><th>session</th><th>client</th><th>node</th><th>connected</th><th>address</th><th></th></tr></thead><tbody></tbody></table>
    <button id="lookupMore" class="secondary" hidden>More</button>
  </section>

  <section class="wide">
    <h2>Recent presence events</h2>
    <p id="eventsNote" class="note"></p>
    <p id="eventsEmpty" class="empty">None since this page opened.</p>
    <ol id="events"></ol>
  </section>
</main>
<script id="config" type="application/json">${jsonForScript(config)}</script>
<script src="/dashboard/assets/uPlot.iife.min.js"></script>
<script>
${DASHBOARD_SCRIPT}</script>
</body>
</html>
`;
}

/** JSON that cannot end the surrounding script element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}
