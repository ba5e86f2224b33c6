/**
 * The dashboard page's script (see dashboard-page.ts), plain ES2017 run as it is. It polls the
 * overview and the presence events every 2 s, renders with textContent only, keeps the operator's
 * key in sessionStorage and stops polling on a 401/403 until a key is given.
 */
export const DASHBOARD_SCRIPT = `(function () {
  'use strict';
  var config = JSON.parse(document.getElementById('config').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var KEY = 'pushgate.dashboardKey';
  var lastSeq = 0;
  var polling = null;
  var chart = null;
  var series = [[], [], [], []];
  var lookup = { user: '', token: '' };
  $('self').textContent = config.nodeId;

  function show(id, text) { $(id).textContent = text || ''; $(id).hidden = !text; }
  function cell(row, text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    row.append(td);
    return td;
  }
  function clock(ms) { return new Date(ms).toLocaleTimeString([], { hour12: false }); }

  function ApiError(status, code, message) { this.status = status; this.code = code; this.message = message; }
  async function api(path, body) {
    var headers = {};
    var key = sessionStorage.getItem(KEY);
    if (key) headers.authorization = 'Bearer ' + key;
    var init = { headers: headers };
    if (body !== undefined) {
      init.method = 'POST';
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    var res = await fetch('/dashboard/api/' + path, init);
    var json = await res.json().catch(function () { return {}; });
    if (!res.ok) {
      var err = json.error || {};
      if (res.status === 401 || res.status === 403) needKey(res.status, err);
      throw new ApiError(res.status, err.code || '', err.message || res.statusText);
    }
    return json;
  }
  function describe(e) { return e instanceof ApiError ? e.message + ' (' + e.status + (e.code ? ', ' + e.code : '') + ')' : String(e && e.message || e); }

  function needKey(status, err) {
    stopPolling();
    $('auth').hidden = false;
    show('authError', (status === 401 ? 'A key is needed: ' : 'Refused: ') + (err.message || '') + (err.code ? ' (' + err.code + ')' : ''));
  }
  $('authForm').addEventListener('submit', function (ev) {
    ev.preventDefault();
    var key = $('key').value.trim();
    if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
    show('authError');
    start();
  });

  function renderOverview(o) {
    show('error');
    $('auth').hidden = true;
    $('updated').textContent = 'updated ' + clock(o.serverTimeMs);
    $('sessionsTotal').textContent = String(o.census.sessions);
    $('usersOnline').textContent = String(o.census.usersOnline);
    $('nodeCount').textContent = String(o.nodes.length);
    show('capped', o.census.capped ? 'Counts cover the first ' + o.census.pagesRead + ' pages of the registry only (the cap): the real numbers are higher.' : '');
    var body = $('byNode');
    body.textContent = '';
    o.nodes.forEach(function (node) {
      var types = o.census.byNode[node.id] || {};
      var names = Object.keys(types).sort();
      if (names.length === 0) names = [''];
      names.forEach(function (type, i) {
        var row = document.createElement('tr');
        row.dataset.node = node.id;
        row.dataset.clientType = type;
        cell(row, i === 0 ? node.id + (node.id === o.nodeId ? ' (this node)' : '') : '', 'mono');
        cell(row, i === 0 ? (node.live === null ? '?' : node.live ? 'live' : 'lapsed') : '');
        cell(row, type || '–');
        cell(row, String(types[type] || 0), 'num');
        body.append(row);
      });
    });
    renderMetrics(o.metrics);
  }

  function renderMetrics(m) {
    $('noMetrics').hidden = m !== null;
    var body = $('rates');
    body.textContent = '';
    if (!m) return;
    Object.keys(m.pushesPerSecond).sort().forEach(function (outcome) {
      var row = document.createElement('tr');
      row.dataset.outcome = outcome;
      cell(row, outcome);
      cell(row, m.pushesPerSecond[outcome].toFixed(2), 'num');
      body.append(row);
    });
    var l = m.ackLatency;
    $('latency').textContent = l
      ? 'ack latency p50 ' + ms(l.p50) + ' · p95 ' + ms(l.p95) + ' · p99 ' + ms(l.p99) + ' ms (' + l.count + ' acks)'
      : 'ack latency: no acks in the window';
    var now = Date.now() / 1000;
    series[0].push(now);
    series[1].push(l ? l.p50 * 1000 : null);
    series[2].push(l ? l.p95 * 1000 : null);
    series[3].push(l ? l.p99 * 1000 : null);
    if (series[0].length > 150) series.forEach(function (s) { s.shift(); });
    drawChart();
  }
  function ms(seconds) { return (seconds * 1000).toFixed(seconds < 0.01 ? 2 : 1); }

  function drawChart() {
    if (typeof uPlot !== 'function') return;
    if (chart === null) {
      chart = new uPlot({
        width: Math.max(300, $('chart').clientWidth || 400),
        height: 160,
        series: [
          {},
          { label: 'p50 ms', stroke: '#2f6fed', spanGaps: false },
          { label: 'p95 ms', stroke: '#b54708', spanGaps: false },
          { label: 'p99 ms', stroke: '#c4320a', spanGaps: false },
        ],
        axes: [{}, { label: 'ms' }],
      }, series, $('chart'));
    } else {
      chart.setData(series);
    }
  }

  function renderEvents(e) {
    $('eventsNote').textContent = e.problem ? 'The presence feed stopped: ' + e.problem + ' (reopened on the next poll).' : (e.live ? 'Following every node\\'s events (newest first, last 50).' : '');
    var list = $('events');
    e.events.forEach(function (ev) {
      var item = document.createElement('li');
      item.className = 'mono';
      item.dataset.kind = ev.kind;
      item.textContent = clock(ev.atMs) + '  ' + ev.kind + '  user ' + ev.userId +
        (ev.sessionId ? '  session ' + ev.sessionId + ' (' + ev.clientType + ' on ' + ev.nodeId + ')' : '') +
        (ev.reason ? '  reason ' + ev.reason : '') + '  sessions ' + ev.sessionCount;
      list.prepend(item);
    });
    while (list.children.length > 50) list.lastChild.remove();
    $('eventsEmpty').hidden = list.children.length > 0;
    lastSeq = e.latest;
  }

  async function poll() {
    try {
      var results = await Promise.all([api('overview'), api('events?after=' + lastSeq)]);
      renderOverview(results[0]);
      renderEvents(results[1]);
    } catch (e) {
      if (!(e instanceof ApiError && (e.status === 401 || e.status === 403))) show('error', 'Could not refresh: ' + describe(e));
    }
  }
  function stopPolling() { if (polling !== null) { clearInterval(polling); polling = null; } }
  function start() {
    stopPolling();
    poll();
    polling = setInterval(poll, 2000);
  }

  $('pushForm').addEventListener('submit', async function (ev) {
    ev.preventDefault();
    show('pushError');
    var data;
    try {
      data = $('pushData').value.trim() === '' ? null : JSON.parse($('pushData').value);
    } catch (e) {
      return show('pushError', 'Data is not valid JSON: ' + e.message);
    }
    var body = { user: $('pushUser').value.trim(), event: $('pushEvent').value.trim(), data: data, noAck: $('pushNoAck').checked };
    var types = $('pushClientTypes').value.trim();
    if (types) body.clientTypes = types.split(',').map(function (t) { return t.trim(); });
    if ($('pushTimeout').value) body.ackTimeoutMs = Number($('pushTimeout').value);
    $('pushButton').disabled = true;
    $('pushSummary').textContent = 'pushing…';
    try {
      var result = await api('push', body);
      renderPush(result);
    } catch (e) {
      $('pushSummary').textContent = '';
      show('pushError', 'Push refused: ' + describe(e));
    } finally {
      $('pushButton').disabled = false;
    }
  });

  function renderPush(r) {
    $('pushSummary').textContent = r.deliveries.length + ' session(s): ' + r.acked + ' acked, ' + r.timedOut + ' timed out, ' + r.failed + ' failed · message ' + r.messageId;
    var table = $('pushResults');
    var body = table.querySelector('tbody');
    body.textContent = '';
    r.deliveries.forEach(function (d) {
      var row = document.createElement('tr');
      row.dataset.sessionId = d.session.sessionId;
      cell(row, d.session.sessionId, 'mono');
      cell(row, d.session.clientType);
      cell(row, d.session.nodeId, 'mono');
      cell(row, d.status, 'status status-' + d.status);
      cell(row, d.status === 'acked' ? (d.latencyUs / 1000).toFixed(1) : '', 'num');
      cell(row, d.error ? d.error : d.ackData === undefined ? '' : JSON.stringify(d.ackData), 'mono');
      body.append(row);
    });
    table.hidden = false;
  }

  async function lookUp(more) {
    show('lookupError');
    if (!more) lookup = { user: $('lookupUser').value.trim(), token: '' };
    try {
      var q = 'sessions?user=' + encodeURIComponent(lookup.user) + (lookup.token ? '&pageToken=' + encodeURIComponent(lookup.token) : '');
      var page = await api(q);
      renderSessions(page, more);
    } catch (e) {
      show('lookupError', 'Lookup failed: ' + describe(e));
    }
  }
  function renderSessions(page, more) {
    var table = $('sessions');
    var body = table.querySelector('tbody');
    if (!more) body.textContent = '';
    page.sessions.forEach(function (s) {
      var row = document.createElement('tr');
      row.dataset.sessionId = s.sessionId;
      cell(row, s.sessionId, 'mono');
      cell(row, s.clientType);
      cell(row, s.nodeId, 'mono');
      cell(row, clock(s.connectedAtMs));
      cell(row, s.remoteAddress, 'mono');
      var td = document.createElement('td');
      var kick = document.createElement('button');
      kick.className = 'danger';
      kick.textContent = 'Kick';
      kick.addEventListener('click', function () { kickSession(lookup.user, s.sessionId, kick); });
      td.append(kick);
      row.append(td);
      body.append(row);
    });
    lookup.token = page.nextPageToken;
    $('lookupMore').hidden = !page.nextPageToken;
    table.hidden = body.children.length === 0;
    $('lookupSummary').textContent = body.children.length === 0 ? 'User ' + lookup.user + ' has no sessions.' : 'User ' + lookup.user + ': ' + body.children.length + ' session(s)' + (page.nextPageToken ? ' so far' : '') + '.';
  }
  async function kickSession(user, sessionId, button) {
    button.disabled = true;
    try {
      await api('kick', { user: user, sessionId: sessionId, reason: 'kicked from the dashboard' });
      await lookUp(false);
    } catch (e) {
      button.disabled = false;
      show('lookupError', 'Kick failed: ' + describe(e));
    }
  }
  $('lookupForm').addEventListener('submit', function (ev) { ev.preventDefault(); lookUp(false); });
  $('lookupMore').addEventListener('click', function () { lookUp(true); });

  start();
})();
`;
