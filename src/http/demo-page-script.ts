import { DEV_PUSH_SCRIPT } from './demo-page-push.js';

/**
 * The demo page's module script. It connects through the device library the node serves
 * (/device.js, packages/device), as a real page would: the library asks for message metadata,
 * acks when a handler resolves and de-duplicates redeliveries; the page shows each event with its
 * metadata, replays from the offline inbox marked as such. Functions are module-scoped, so every
 * control gets its listener here (no onclick attributes).
 */
export const DEMO_PAGE_SCRIPT = `<script type="module">
  const config = JSON.parse(document.getElementById('config').textContent);
  const $ = (id) => document.getElementById(id);
  // Loaded at once and awaited on Connect, so a node without the built file still shows a page that says why.
  const library = import('/device.js');
  library.catch(() => {});
  /** The open client, or null. */
  let device = null;
  /** Bumped by every Connect and Disconnect: a Connect still fetching its token gives up when it is stale. */
  let attempt = 0;

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
  function clockTime(ms) {
    const d = new Date(ms);
    return d.toLocaleTimeString([], { hour12: false }) + '.' + String(d.getMilliseconds()).padStart(3, '0');
  }
  function timeNow() {
    return clockTime(Date.now());
  }
  // Single-quotes for a POSIX shell: ' becomes '\\'' (backslashes doubled: this is a TS template).
  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\\\''") + "'";
  }
  function updateCommand() {
    const body = JSON.stringify({ user_id: $('user').value.trim() || '<user id>', event: 'notice', data: { text: 'hello' } });
    $('grpcurl').textContent = 'grpcurl -plaintext -d ' + shellQuote(body) + ' ' + config.grpcAddress + ' pushgate.v1.PushService/PushToUser';
  }
  // A pasted token names its user in the sub claim; show it so the grpcurl command targets it.
  function userFromToken(token) {
    try {
      return JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).sub;
    } catch (e) {
      return undefined;
    }
  }

  async function fetchToken(user) {
    const res = await fetch('/dev/token?user=' + encodeURIComponent(user));
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const err = body.error || {};
      throw new Error('GET /dev/token failed (' + res.status + (err.code ? ', ' + err.code : '') + '): ' + (err.message || res.statusText));
    }
    return body.token;
  }

  async function connect() {
    disconnect();
    const mine = attempt;
    show('error'); show('notice');
    const user = $('user').value.trim();
    const clientType = $('clientType').value;
    setState('connecting');
    $('connect').disabled = true;
    $('disconnect').disabled = false;
    if (config.dev && !user) return fail('enter a user id');
    let lib;
    let token;
    try {
      lib = await library;
    } catch (e) {
      return fail('the device library did not load from /device.js (' + e.message + '); run npm run build on the node');
    }
    if (typeof io !== 'function') return fail('the Socket.IO client did not load from /socket.io/socket.io.js');
    try {
      // The first token is fetched here, so a refusal of /dev/token shows at once instead of being retried.
      token = config.dev ? await fetchToken(user) : $('token').value.trim();
    } catch (e) {
      return mine === attempt && fail(e.message);
    }
    if (mine !== attempt) return;
    if (!token) return fail('paste a token first');
    let first = token;
    try {
      device = open(lib, clientType, config.dev ? () => { const t = first; first = null; return t || fetchToken(user); } : token);
    } catch (e) {
      fail(e.message);
    }
  }

  function open(lib, clientType, token) {
    const seen = new Map();
    const named = new Set();
    /** Whether the event being emitted asks for an ack (the library does not say): read by its handler in the same tick. */
    let ackRequested = false;
    let ended = false;
    const client = lib.connect({
      url: location.origin,
      token: token,
      clientType: clientType,
      // The page's io, wrapped to watch the socket: the library takes handlers by event name, and
      // this page lists whatever event arrives, so it adds a handler for each name as it first comes.
      io: (url, options) => {
        const socket = io(url, options);
        // Socket.IO calls catch-all listeners first, then the named ones: a handler added here takes this very event.
        socket.onAny((event, ...args) => {
          if (device !== client) return;
          const meta = args[1] || {};
          ackRequested = typeof args[args.length - 1] === 'function';
          const row = seen.get(meta.messageId);
          if (row) return row.redelivered(meta);
          if (named.has(event)) return;
          named.add(event);
          try {
            client.on(event, (data, m) => received(client, seen, event, data, m, ackRequested, clientType));
          } catch (e) {
            // A name the library keeps for itself (pushgate:*): not a pushed event.
          }
        });
        socket.on('connect_error', (err) => {
          if (device !== client) return;
          const code = err.data && err.data.code;
          show('error', 'Connection refused: ' + err.message + (code ? ' (code: ' + code + ')' : ''));
          if (socket.active) setState('connecting', 'retrying');
        });
        socket.on('pushgate:disconnect', (notice) => {
          if (device === client) show('notice', 'The server closed this session: ' + (notice && notice.reason));
        });
        return socket;
      },
    });
    client.onStatus((status) => {
      if (device !== client) return;
      if (status.type === 'connected') {
        setState('connected');
        $('session').textContent = status.sessionId;
        return show('error');
      }
      $('session').textContent = '–';
      if (status.willReconnect) return setState('connecting', 'reconnecting (' + status.reason + ')');
      ended = true;
      setState('', 'disconnected (' + status.reason + ')');
      resetButtons();
    });
    client.onError((err) => {
      if (device !== client) return;
      if (err.code === 'connect_refused') setState('connecting', 'retrying');
      else show('error', err.message + ' (' + err.code + ')');
    });
    client.onClose((reason) => {
      // After a session ended, the status said why; after a refusal the library will not retry (a bad token or client type).
      if (device !== client || ended || reason === 'client_closed') return;
      if ($('error').hidden) show('error', 'Stopped: ' + reason);
      setState('error', 'refused');
      resetButtons();
    });
    return client;
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
    attempt++;
    if (device) {
      const old = device;
      device = null;
      old.close();
      $('session').textContent = '–';
    }
    setState('', 'disconnected');
    resetButtons();
  }

  function span(className, text) {
    const el = document.createElement('span');
    el.className = className;
    el.textContent = text;
    return el;
  }

  /** Shows one event; what it returns (or resolves to) is the ack the library sends. */
  function received(client, seen, event, data, meta, ackRequested, clientType) {
    const item = document.createElement('li');
    if (meta.replay) item.className = 'replayed';
    const head = document.createElement('div');
    head.className = 'meta';
    head.append(span('time', timeNow()), span('name', event));
    if (meta.replay) head.append(span('badge replay', 'replayed'));
    if (meta.replay || meta.attempt > 1) head.append(span('badge attempt', 'attempt ' + meta.attempt));
    const status = span('ack', '');
    head.append(status);
    const ids = document.createElement('div');
    ids.className = 'ids';
    ids.append('message ', span('msgid', meta.messageId || '(none)'), ' · sent ' + clockTime(meta.sentAt));
    const redelivered = span('redelivered', '');
    ids.append(redelivered);
    const body = document.createElement('pre');
    body.textContent = data === undefined ? '(no data)' : JSON.stringify(data, null, 2);
    item.append(head, ids, body);
    $('events').prepend(item);
    $('empty').hidden = true;
    // The library answers a redelivery of an id it handled (or is handling) without calling the
    // handler again; the page notes it on the first row instead of adding one.
    if (meta.messageId) {
      seen.set(meta.messageId, {
        redelivered: (m) => {
          redelivered.textContent = ' · delivered again (attempt ' + m.attempt + (m.replay ? ', replayed' : '') + '), not handled twice';
        },
      });
    }

    if (!ackRequested) {
      status.textContent = 'no ack requested';
      return undefined;
    }
    const value = { ok: true, by: clientType };
    const done = (how) => {
      status.className = 'ack done';
      status.textContent = 'acked ' + how + ' with ' + JSON.stringify(value);
      return value;
    };
    if ($('autoAck').checked) return done('automatically');
    const button = document.createElement('button');
    button.textContent = 'Ack';
    status.textContent = 'awaiting ack ';
    status.append(button);
    return new Promise((resolve) => {
      button.addEventListener('click', () => {
        button.remove();
        // A closed client sends no late ack: a stored message comes back on the next connection.
        if (device !== client) status.textContent = 'not acked: that connection is closed';
        else resolve(done('by hand'));
      });
    });
  }

${DEV_PUSH_SCRIPT}  $('connect').addEventListener('click', connect);
  $('disconnect').addEventListener('click', disconnect);
  $('user').addEventListener('input', updateCommand);
  $('token').addEventListener('input', () => {
    const sub = userFromToken($('token').value.trim());
    if (typeof sub === 'string') { $('user').value = sub; updateCommand(); }
  });
  $('copy').addEventListener('click', () => {
    navigator.clipboard.writeText($('grpcurl').textContent).then(() => {
      $('copy').textContent = 'Copied';
      setTimeout(() => { $('copy').textContent = 'Copy'; }, 1200);
    }, () => { $('copy').textContent = 'Select & copy'; });
  });
  $('clear').addEventListener('click', () => {
    $('events').textContent = '';
    $('empty').hidden = false;
  });
  updateCommand();
</script>`;
