/**
 * The demo page's "Push to me" button (development mode): it posts a notice for the page's user to
 * POST /dev/push, live or kept in the offline inbox (delivery mode, TTL), and lists each session's
 * result. Pieces of demo-page.ts's page, inserted as they are.
 */

export const DEV_PUSH_CSS = `  table { width: 100%; border-collapse: collapse; margin-top: 8px; font-size: 13px; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); }
  th { color: var(--muted); font-size: 12px; }
  td.acked { color: var(--ok); font-weight: 600; }
`;

export const DEV_PUSH_HTML = `    <div id="devPush" hidden>
      <p class="note" style="margin-top:12px">Or, in development mode, push a <code>notice</code> to this user from here (<code>POST /dev/push</code>, through the same push service):</p>
      <div class="row">
        <label>Delivery <select id="deliveryMode"><option value="live">live</option><option value="store_if_unacked">store if unacked</option><option value="store">store</option></select></label>
        <label>TTL seconds <input type="text" id="ttlSeconds" inputmode="numeric" size="8" placeholder="default" disabled></label>
        <button id="pushToMe">Push to me</button><span id="pushSummary"></span>
      </div>
      <p class="note" style="margin:8px 0 0">A stored push waits in the user's offline inbox until a session acks it: push with no session connected (or leave it unacked), then connect to see it replayed.</p>
      <div id="pushError" class="banner error" hidden></div>
      <table id="pushResults" hidden><thead><tr><th>session</th><th>client type</th><th>status</th><th>latency ms</th><th>ack / error</th></tr></thead><tbody></tbody></table>
    </div>
`;

/** Runs inside the demo page's script: uses its `$`, `show` and `timeNow`. */
export const DEV_PUSH_SCRIPT = `  async function pushToMe() {
    show('pushError');
    var user = $('user').value.trim();
    if (!user) return show('pushError', 'enter a user id');
    var request = { user: user, event: 'notice', data: { text: 'hello from the demo page', at: timeNow() } };
    var mode = $('deliveryMode').value;
    var ttl = $('ttlSeconds').value.trim();
    // Live is the endpoint's default; a stored push names its mode, and a TTL when one is given
    // (else the node's). Anything but digits goes as typed, for the endpoint to refuse by its rules.
    if (mode !== 'live') request.deliveryMode = mode;
    if (mode !== 'live' && ttl !== '') request.ttlSeconds = /^[0-9]+$/.test(ttl) ? Number(ttl) : ttl;
    $('pushToMe').disabled = true;
    $('pushSummary').textContent = 'pushing…';
    try {
      var res = await fetch('/dev/push', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      var body = await res.json().catch(function () { return {}; });
      if (!res.ok) {
        var err = body.error || {};
        throw new Error('POST /dev/push failed (' + res.status + (err.code ? ', ' + err.code : '') + '): ' + (err.message || res.statusText));
      }
      renderPush(body);
    } catch (e) {
      $('pushSummary').textContent = '';
      show('pushError', e.message);
    } finally {
      $('pushToMe').disabled = false;
    }
  }
  function renderPush(result) {
    $('pushSummary').textContent = result.deliveries.length + ' session(s): ' + result.acked + ' acked, ' + result.timedOut + ' timed out, ' + result.failed + ' failed' +
      (result.stored ? '; kept in the offline inbox' : '');
    var rows = $('pushResults').querySelector('tbody');
    rows.textContent = '';
    result.deliveries.forEach(function (d) {
      var row = document.createElement('tr');
      [d.session.sessionId, d.session.clientType, d.status, d.status === 'acked' ? (d.latencyUs / 1000).toFixed(1) : '',
        d.error || (d.ackData === undefined ? '' : JSON.stringify(d.ackData))].forEach(function (text, i) {
        var td = document.createElement('td');
        td.textContent = text;
        if (i === 2) td.className = d.status;
        row.append(td);
      });
      rows.append(row);
    });
    $('pushResults').hidden = result.deliveries.length === 0;
  }

  $('pushToMe').addEventListener('click', pushToMe);
  $('deliveryMode').addEventListener('change', function () { $('ttlSeconds').disabled = $('deliveryMode').value === 'live'; });
`;
