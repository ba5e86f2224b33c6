import { DEV_PUSH_CSS, DEV_PUSH_HTML, DEV_PUSH_SCRIPT } from './demo-page-push.js';
import { PAGE_BASE_CSS } from './page-style.js';

export interface DemoPageOptions {
  readonly clientTypes: readonly string[];
  readonly dev: boolean;
  readonly nodeId: string;
  /** Shown in the ready-to-copy grpcurl command; defaults to localhost:50051. */
  readonly grpcAddress?: string;
}

/**
 * A self-contained page for trying pushgate by hand: connect as a user and client type, watch
 * pushed events arrive, ack them, and copy a grpcurl command that pushes to that user. Everything
 * the server inserts is HTML-escaped; everything from the user or the wire is set as textContent.
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
<script>
(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('config').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var socket = null;

  if (!config.dev) $('tokenField').hidden = false;
  if (config.dev) $('devPush').hidden = false;

  function setState(state, text) {
    $('state').className = 'pill ' + state;
    $('state').textContent = text || state;
  }
  function show(id, text) {
    $(id).textContent = text || '';
    $(id).hidden = !text;
  }
  function timeNow() {
    var d = new Date();
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  // Single-quotes for a POSIX shell: ' becomes '\\'' (backslashes doubled: this is a TS template).
  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\\\''") + "'";
  }
  function updateCommand() {
    var body = JSON.stringify({ user_id: $('user').value.trim() || '<user id>', event: 'notice', data: { text: 'hello' } });
    $('grpcurl').textContent = 'grpcurl -plaintext -d ' + shellQuote(body) + ' ' + config.grpcAddress + ' pushgate.v1.PushService/PushToUser';
  }
  // A pasted token names its user in the sub claim; show it so the grpcurl command targets it.
  function userFromToken(token) {
    try {
      var part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(part)).sub;
    } catch (e) {
      return undefined;
    }
  }

  async function fetchToken(user) {
    var res = await fetch('/dev/token?user=' + encodeURIComponent(user));
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok) {
      var err = body.error || {};
      throw new Error('GET /dev/token failed (' + res.status + (err.code ? ', ' + err.code : '') + '): ' + (err.message || res.statusText));
    }
    return body.token;
  }

  async function connect() {
    disconnect();
    show('error'); show('notice');
    var user = $('user').value.trim();
    var clientType = $('clientType').value;
    if (typeof io !== 'function') return fail('the Socket.IO client did not load from /socket.io/socket.io.js');
    setState('connecting');
    $('connect').disabled = true;
    $('disconnect').disabled = false;
    if (config.dev && !user) return fail('enter a user id');
    var token;
    try {
      token = config.dev ? await fetchToken(user) : $('token').value.trim();
    } catch (e) {
      return fail(e.message);
    }
    if (!token) return fail('paste a token first');
    var s = io({ auth: { token: token, clientType: clientType }, forceNew: true });
    socket = s;
    // Handlers ignore a socket the page has already replaced or closed.
    s.on('connect', function () {
      if (s !== socket) return;
      setState('connected');
      $('session').textContent = s.id;
      show('error');
    });
    s.on('connect_error', function (err) {
      if (s !== socket) return;
      var code = err.data && err.data.code;
      show('error', 'Connection refused: ' + err.message + (code ? ' (code: ' + code + ')' : ''));
      if (s.active) return setState('connecting', 'retrying');
      setState('error', 'refused');
      resetButtons();
    });
    s.on('disconnect', function (reason) {
      if (s !== socket) return;
      $('session').textContent = '–';
      if (s.active) return setState('connecting', 'reconnecting (' + reason + ')');
      setState('', 'disconnected (' + reason + ')');
      resetButtons();
    });
    s.on('pushgate:disconnect', function (notice) {
      show('notice', 'The server closed this session: ' + (notice && notice.reason));
    });
    s.onAny(function (event) {
      var args = Array.prototype.slice.call(arguments, 1);
      var ack = typeof args[args.length - 1] === 'function' ? args.pop() : null;
      addEvent(event, args, ack, clientType);
    });
  }

  function fail(message) {
    show('error', message);
    setState('error', 'error');
    resetButtons();
  }
  function resetButtons() {
    $('connect').disabled = false;
    $('disconnect').disabled = true;
  }
  function disconnect() {
    if (socket) {
      var old = socket;
      socket = null;
      old.close();
      setState('', 'disconnected');
      $('session').textContent = '–';
    }
    resetButtons();
  }

  function addEvent(event, args, ack, clientType) {
    var item = document.createElement('li');
    var meta = document.createElement('div');
    meta.className = 'meta';
    var time = document.createElement('span');
    time.className = 'time';
    time.textContent = timeNow();
    var name = document.createElement('span');
    name.className = 'name';
    name.textContent = event;
    var status = document.createElement('span');
    status.className = 'ack';
    meta.append(time, name, status);
    var data = document.createElement('pre');
    data.textContent = args.length === 0 ? '(no data)' : JSON.stringify(args.length === 1 ? args[0] : args, null, 2);
    item.append(meta, data);

    if (!ack) {
      status.textContent = 'no ack requested';
    } else {
      var reply = function (how) {
        ack({ ok: true, by: clientType });
        status.className = 'ack done';
        status.textContent = 'acked ' + how + ' with ' + JSON.stringify({ ok: true, by: clientType });
      };
      if ($('autoAck').checked) {
        reply('automatically');
      } else {
        var button = document.createElement('button');
        button.textContent = 'Ack';
        button.addEventListener('click', function () { button.remove(); reply('by hand'); });
        status.textContent = 'awaiting ack ';
        status.append(button);
      }
    }
    $('events').prepend(item);
    $('empty').hidden = true;
  }

${DEV_PUSH_SCRIPT}  $('connect').addEventListener('click', connect);
  $('disconnect').addEventListener('click', disconnect);
  $('user').addEventListener('input', updateCommand);
  $('token').addEventListener('input', function () {
    var sub = userFromToken($('token').value.trim());
    if (typeof sub === 'string') { $('user').value = sub; updateCommand(); }
  });
  $('copy').addEventListener('click', function () {
    navigator.clipboard.writeText($('grpcurl').textContent).then(function () {
      $('copy').textContent = 'Copied';
      setTimeout(function () { $('copy').textContent = 'Copy'; }, 1200);
    }, function () { $('copy').textContent = 'Select & copy'; });
  });
  $('clear').addEventListener('click', function () {
    $('events').textContent = '';
    $('empty').hidden = false;
  });
  updateCommand();
})();
</script>
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
