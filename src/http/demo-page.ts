import { DEV_PUSH_CSS, DEV_PUSH_HTML } from './demo-page-push.js';
import { DEMO_PAGE_SCRIPT } from './demo-page-script.js';
import { PAGE_BASE_CSS } from './page-style.js';

export interface DemoPageOptions {
  readonly clientTypes: readonly string[];
  readonly dev: boolean;
  readonly nodeId: string;
  /** Shown in the ready-to-copy grpcurl command; defaults to localhost:50051. */
  readonly grpcAddress?: string;
}

/**
 * A page for trying pushgate by hand: connect as a user and client type through the device library
 * (/device.js), watch pushed events arrive with their metadata (replays from the offline inbox
 * marked), ack them, and copy a grpcurl command that pushes to that user. Everything the server
 * inserts is HTML-escaped; everything from the user or the wire is set as textContent.
 */
export function demoPageHtml(options: DemoPageOptions): string {
  const config = { clientTypes: options.clientTypes, dev: options.dev, grpcAddress: options.grpcAddress ?? 'localhost:50051' };
  const typeOptions = options.clientTypes.map((type) => `<option value="${escapeHtml(type)}">${escapeHtml(type)}</option>`).join('');
  const modeNote = options.dev
    ? 'Development mode: the page mints a token for the user id from <code>GET /dev/token</code>. Never run <code>--dev</code> in production.'
    : 'This node is not in development mode, so it cannot mint tokens. Paste a JWT signed by your backend; its <code>sub</code> claim is the user id (the field below is then only used for the grpcurl command).';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pushgate demo</title>
<link rel="icon" href="data:,">
<style>
${PAGE_BASE_CSS}
  main { max-width: 960px; margin: 0 auto; padding: 20px 24px; display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px; }
  input[type=text], select, textarea { font: inherit; padding: 6px 8px; border: 1px solid #cfd5df; border-radius: 6px; background: #fff; }
  textarea { width: 100%; min-height: 60px; font-family: ui-monospace, monospace; font-size: 12px; }
  code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
  .note { color: var(--muted); margin: 0 0 12px; }
  .status { display: flex; gap: 16px; align-items: center; margin-top: 12px; }
  .pill { padding: 2px 10px; border-radius: 999px; font-weight: 600; font-size: 12px; background: #eef1f5; color: var(--muted); }
  .pill.connected { background: #e3f6ea; color: var(--ok); }
  .pill.connecting { background: #fff4e0; color: var(--warn); }
  .pill.error { background: #fdeae3; color: var(--bad); }
  .banner { margin-top: 12px; padding: 8px 12px; border-radius: 6px; }
  .cmd { display: flex; gap: 8px; align-items: stretch; }
  .cmd pre { flex: 1; min-width: 0; margin: 0; padding: 10px; background: #0f1722; color: #d9e2f1; border-radius: 6px; white-space: pre-wrap; overflow-wrap: anywhere; }
  ol { list-style: none; margin: 0; padding: 0; display: grid; gap: 8px; }
  li { border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; }
${DEV_PUSH_CSS}  li .meta { display: flex; gap: 10px; align-items: center; }
  li .name { font-weight: 600; }
  li .time { color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; }
  li .ack { margin-left: auto; font-size: 12px; color: var(--muted); }
  li .ack.done { color: var(--ok); }
  li pre { margin: 6px 0 0; white-space: pre-wrap; word-break: break-word; }
  li.replayed { border-left: 4px solid var(--warn); }
  li .badge { padding: 1px 8px; border-radius: 999px; font-size: 11px; font-weight: 600; background: #eef1f5; color: var(--muted); }
  li .badge.replay { background: #fff4e0; color: var(--warn); }
  li .ids { margin-top: 4px; color: var(--muted); font-size: 12px; }
  li .msgid { font-family: ui-monospace, monospace; color: var(--fg); }
</style>
</head>
<body>
<header><h1>pushgate demo</h1><span>node ${escapeHtml(options.nodeId)}</span></header>
<main>
  <section>
    <h2>Connect</h2>
    <p class="note">${modeNote}</p>
    <div class="row">
      <label>User id <input type="text" id="user" value="61" autocomplete="off"></label>
      <label>Client type <select id="clientType">${typeOptions}</select></label>
      <button id="connect">Connect</button>
      <button id="disconnect" class="secondary" disabled>Disconnect</button>
      <label class="inline"><input type="checkbox" id="autoAck" checked> Auto-ack pushed events</label>
    </div>
    <label id="tokenField" style="margin-top:12px" hidden>Token (JWT) <textarea id="token" spellcheck="false" placeholder="eyJhbGciOi..."></textarea></label>
    <div class="status"><span>State <span id="state" class="pill">disconnected</span></span><span>Session <code id="session">–</code></span></div>
    <div id="error" class="banner error" hidden></div>
    <div id="notice" class="banner notice" hidden></div>
  </section>
  <section>
    <h2>Push to this user</h2>
    <p class="note">Run this from a terminal (needs <code>grpcurl</code>); every connected client of the user receives the event.</p>
    <div class="cmd"><pre id="grpcurl"></pre><button id="copy" class="secondary">Copy</button></div>
${DEV_PUSH_HTML}  </section>
  <section>
    <div class="row" style="justify-content:space-between;align-items:center;margin-bottom:10px"><h2 style="margin:0">Received events</h2><button id="clear" class="secondary">Clear</button></div>
    <p id="empty" class="empty">Nothing yet. Connect, then push.</p>
    <ol id="events"></ol>
  </section>
</main>
<script id="config" type="application/json">${jsonForScript(config)}</script>
<script src="/socket.io/socket.io.js"></script>
${DEMO_PAGE_SCRIPT}
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that cannot end the surrounding script element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}
