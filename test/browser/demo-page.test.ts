import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryMode } from '../../src/gen/pushgate/v1/inbox.js';
import { DeliveryStatus, PushToUserRequest, type PushToUserResponse } from '../../src/gen/pushgate/v1/push_service.js';
import { DEVICE_SCRIPT_FILE } from '../../src/http/device-script.js';
import { launchChromium } from '../support/chromium.js';
import { TestPushClient } from '../support/grpc-client.js';
import { startNode, type TestNode } from '../support/node.js';
import { signToken } from '../support/tokens.js';

/**
 * The demo page as a person uses it: real headless Chromium (Debian's, driven by playwright-core)
 * against a real node, clicking the page's own controls and checking the result from both sides,
 * what the page shows and what the gRPC API reports.
 */

/** How long the page may take to show something; well under the test timeout so failures say what. */
const UI_TIMEOUT_MS = 5000;

let browser: { context: BrowserContext; close(): Promise<void> } | undefined;
let context: BrowserContext | undefined;
let devNode: TestNode | undefined;
const pages: Page[] = [];
const nodes: TestNode[] = [];
const closers: { close(): void }[] = [];

beforeAll(async () => {
  [browser, devNode] = await Promise.all([launchChromium(UI_TIMEOUT_MS), startNode({ PUSHGATE_DEV: '1' }), buildDeviceScript()]);
  context = browser.context;
}, 60_000);

/**
 * The page connects through /device.js, which `npm run build` (also run by `npm install`) makes.
 * When it is missing, only the device package is built: the root build would rewrite dist/ under
 * other test files.
 */
async function buildDeviceScript(): Promise<void> {
  if (existsSync(DEVICE_SCRIPT_FILE)) return;
  const root = fileURLToPath(new URL('../../', import.meta.url));
  await promisify(execFile)('npx', ['tsc', '-p', 'packages/device/tsconfig.json'], { cwd: root, timeout: 60_000 });
}

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.close()));
  for (const closer of closers.splice(0)) closer.close();
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

afterAll(async () => {
  await browser?.close();
  await devNode?.stop();
});

function dev(): TestNode {
  if (devNode === undefined) throw new Error('the dev node did not start');
  return devNode;
}

interface DemoPage {
  readonly page: Page;
  readonly user: Locator;
  readonly clientType: Locator;
  readonly connect: Locator;
  readonly disconnect: Locator;
  readonly autoAck: Locator;
  readonly token: Locator;
  readonly state: Locator;
  readonly session: Locator;
  readonly error: Locator;
  readonly notice: Locator;
  readonly grpcurl: Locator;
  readonly events: Locator;
  /** Uncaught exceptions in the page; every test expects none. */
  readonly pageErrors: Error[];
}

async function openDemo(node: TestNode): Promise<DemoPage> {
  if (context === undefined) throw new Error('the browser did not start');
  const page = await context.newPage();
  pages.push(page);
  const pageErrors: Error[] = [];
  page.on('pageerror', (err) => pageErrors.push(err));
  const response = await page.goto(`${node.httpUrl}/`);
  expect(response?.status()).toBe(200);
  expect(await page.title()).toBe('pushgate demo');
  return {
    page,
    user: page.getByLabel('User id'),
    clientType: page.getByLabel('Client type'),
    connect: page.getByRole('button', { name: 'Connect', exact: true }),
    disconnect: page.getByRole('button', { name: 'Disconnect', exact: true }),
    autoAck: page.getByLabel('Auto-ack pushed events'),
    token: page.getByLabel('Token (JWT)'),
    state: page.locator('#state'),
    session: page.locator('#session'),
    error: page.locator('#error'),
    notice: page.locator('#notice'),
    grpcurl: page.locator('#grpcurl'),
    events: page.locator('#events').getByRole('listitem'),
    pageErrors,
  };
}

/** Waits (auto-waiting, no sleeps) until `locator`'s text is exactly `text`, then returns it. */
async function untilText(locator: Locator, text: string | RegExp): Promise<string> {
  await expect
    .poll(() => locator.textContent(), { timeout: UI_TIMEOUT_MS, interval: 20 })
    .toMatch(typeof text === 'string' ? new RegExp(`^${escapeRegExp(text)}$`) : text);
  return (await locator.textContent()) ?? '';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Fills in the form, presses Connect and waits for the connected state; returns the session id shown. */
async function connectAs(demo: DemoPage, userId: string, clientType: string): Promise<string> {
  await demo.user.fill(userId);
  await demo.clientType.selectOption(clientType);
  await demo.connect.click();
  await untilText(demo.state, 'connected');
  const sessionId = (await demo.session.textContent()) ?? '';
  expect(sessionId).toMatch(/^[\w-]{8,}$/);
  expect(await demo.connect.isDisabled()).toBe(true);
  expect(await demo.disconnect.isEnabled()).toBe(true);
  return sessionId;
}

/** The one event row whose name is `event` (rows are newest first). */
function eventRow(demo: DemoPage, event: string): Locator {
  return demo.events.filter({ has: demo.page.locator('.name', { hasText: new RegExp(`^${escapeRegExp(event)}$`) }) });
}

function onlyDelivery(response: PushToUserResponse) {
  expect(response.deliveries).toHaveLength(1);
  return response.deliveries[0]!;
}

describe('demo page in Chromium, dev node', () => {
  it('connects as a pc client, appears in ListSessions, shows a pushed event and acks it automatically', async () => {
    const node = dev();
    const demo = await openDemo(node);
    expect(await demo.autoAck.isChecked()).toBe(true);
    expect(await demo.token.isVisible()).toBe(false); // dev mode mints the token itself
    expect(await demo.clientType.locator('option').allTextContents()).toEqual(['app', 'pc', 'web']);

    const sessionId = await connectAs(demo, 'browser-61', 'pc');

    const { sessions } = await node.client.listSessions({ userId: 'browser-61' });
    expect(sessions.map((s) => ({ sessionId: s.sessionId, userId: s.userId, clientType: s.clientType, nodeId: s.nodeId }))).toEqual([
      { sessionId, userId: 'browser-61', clientType: 'pc', nodeId: node.app.config.server.nodeId },
    ]);
    expect(sessions[0]!.userAgent).toMatch(/Chrome/);

    const response = await node.client.pushToUser({ userId: 'browser-61', event: 'notice', data: { text: 'hello from test' } });
    const delivery = onlyDelivery(response);
    expect(delivery.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
    expect(delivery.session!.sessionId).toBe(sessionId);
    expect(delivery.ackData).toEqual({ ok: true, by: 'pc' });
    expect(response.acked).toBe(1);

    const row = eventRow(demo, 'notice');
    await row.waitFor();
    expect(await demo.events.count()).toBe(1);
    expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toEqual({ text: 'hello from test' });
    expect(await row.locator('.ack').textContent()).toBe('acked automatically with {"ok":true,"by":"pc"}');
    expect(await demo.page.locator('#empty').isVisible()).toBe(false);
    expect(demo.pageErrors).toEqual([]);
  });

  it('with auto-ack off, the push stays pending until the event’s Ack button is clicked', async () => {
    const node = dev();
    const demo = await openDemo(node);
    await demo.autoAck.uncheck();
    const sessionId = await connectAs(demo, 'browser-62', 'pc');

    let settled = false;
    const pushed = node.client
      .pushToUser({ userId: 'browser-62', event: 'approve', data: { text: 'hello from test', po: 7 }, ackTimeoutMs: 15_000 })
      .finally(() => {
        settled = true;
      });

    const row = eventRow(demo, 'approve');
    const ackButton = row.getByRole('button', { name: 'Ack', exact: true });
    await ackButton.waitFor();
    expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toEqual({ text: 'hello from test', po: 7 });
    expect(await row.locator('.ack').textContent()).toBe('awaiting ack Ack');
    // The event is on screen and unacked: the server must still be waiting for it.
    expect(settled).toBe(false);
    expect(await node.client.listSessions({ userId: 'browser-62' })).toMatchObject({ sessions: [{ sessionId }] });
    expect(settled).toBe(false);

    await ackButton.click();
    const response = await pushed;
    const delivery = onlyDelivery(response);
    expect(delivery.status).toBe(DeliveryStatus.DELIVERY_STATUS_ACKED);
    expect(delivery.ackData).toEqual({ ok: true, by: 'pc' });
    expect(delivery.latencyUs).toBeLessThan(15_000_000);
    await untilText(row.locator('.ack'), 'acked by hand with {"ok":true,"by":"pc"}');
    expect(await ackButton.count()).toBe(0);
    expect(demo.pageErrors).toEqual([]);
  });

  it('shows pushed HTML (in the data and the event name) as text, never as markup', async () => {
    const node = dev();
    const demo = await openDemo(node);
    await connectAs(demo, 'browser-63', 'web');

    const payload = '<img src=x onerror=window.__pwned=1>';
    const event = '<img src=y onerror=window.__pwned=2>';
    const response = await node.client.pushToUser({ userId: 'browser-63', event, data: { html: payload, list: [payload] } });
    expect(onlyDelivery(response).ackData).toEqual({ ok: true, by: 'web' });

    const row = eventRow(demo, event);
    await row.waitFor();
    expect(await row.locator('.name').textContent()).toBe(event);
    expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toEqual({ html: payload, list: [payload] });
    expect(await demo.page.locator('img').count()).toBe(0);
    // A fire-and-forget push after the HTML one, and a round trip through the page's own event
    // loop, give any injected handler every chance to have run before looking at the flag
    // (globalThis is the page's window there).
    await node.client.pushToUser({ userId: 'browser-63', event: 'after', noAck: true });
    await eventRow(demo, 'after').waitFor();
    expect(await eventRow(demo, 'after').locator('.ack').textContent()).toBe('no ack requested');
    expect(
      await demo.page.evaluate(
        () => new Promise((resolve) => setTimeout(() => resolve(typeof (globalThis as { __pwned?: unknown }).__pwned), 0)),
      ),
    ).toBe('undefined');
    expect(demo.pageErrors).toEqual([]);
  });

  it('shows the reason DisconnectSessions gives, and can connect again', async () => {
    const node = dev();
    const demo = await openDemo(node);
    const sessionId = await connectAs(demo, 'browser-64', 'app');

    const response = await node.client.disconnectSessions({
      userId: 'browser-64',
      sessionIds: [sessionId],
      reason: 'signed in on another pc',
    });
    expect(response.disconnected.map((s) => s.sessionId)).toEqual([sessionId]);

    await untilText(demo.notice, 'The server closed this session: signed in on another pc');
    expect(await demo.notice.isVisible()).toBe(true);
    // The device library reports the node's notice as the reason, and stops: a kicked device stays out.
    await untilText(demo.state, 'disconnected (signed in on another pc)');
    expect(await demo.session.textContent()).toBe('–');
    expect(await demo.connect.isEnabled()).toBe(true);
    expect(await demo.disconnect.isDisabled()).toBe(true);
    expect((await node.client.listSessions({ userId: 'browser-64' })).sessions).toEqual([]);

    // The page does not reconnect by itself after a server-side close; Connect starts a new session.
    const again = await connectAs(demo, 'browser-64', 'app');
    expect(again).not.toBe(sessionId);
    expect(await demo.notice.isVisible()).toBe(false);
    expect((await node.client.listSessions({ userId: 'browser-64' })).sessions.map((s) => s.sessionId)).toEqual([again]);

    await demo.disconnect.click();
    await untilText(demo.state, 'disconnected');
    await expect
      .poll(async () => (await node.client.listSessions({ userId: 'browser-64' })).sessions, { timeout: UI_TIMEOUT_MS })
      .toEqual([]);
    expect(demo.pageErrors).toEqual([]);
  });

  it('shows a grpcurl command with the user id and the node’s real gRPC port, and that command reaches the page', async () => {
    const node = dev();
    const demo = await openDemo(node);
    const grpcPort = node.app.boundPorts.grpcPort;
    // A quote and a space, so the command only works if the page quotes it for the shell properly.
    const userId = "o'brien 65";
    await demo.user.fill(userId);
    const command = await untilText(demo.grpcurl, /^grpcurl /);
    expect(command).toContain(`127.0.0.1:${grpcPort}`);
    expect(command).toContain('pushgate.v1.PushService/PushToUser');

    // Split it as a POSIX shell would (bash prints each word NUL-terminated, runs nothing else).
    const words = execFileSync('bash', ['-c', `printf '%s\\0' ${command}`], { encoding: 'utf8' })
      .split('\0')
      .slice(0, -1);
    expect(words).toEqual([
      'grpcurl',
      '-plaintext',
      '-d',
      expect.any(String),
      `127.0.0.1:${grpcPort}`,
      'pushgate.v1.PushService/PushToUser',
    ]);
    const body = JSON.parse(words[3]!) as Record<string, unknown>;
    expect(body).toEqual({ user_id: userId, event: 'notice', data: { text: 'hello' } });

    // Do what the command does, at the address it names, while the page is connected as that user.
    await connectAs(demo, userId, 'web');
    const client = new TestPushClient(words[4]!);
    closers.push(client);
    const response = await client.pushToUser(PushToUserRequest.fromJSON(body));
    expect(onlyDelivery(response)).toMatchObject({ status: DeliveryStatus.DELIVERY_STATUS_ACKED, ackData: { ok: true, by: 'web' } });
    const row = eventRow(demo, 'notice');
    await row.waitFor();
    expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toEqual({ text: 'hello' });
    expect(demo.pageErrors).toEqual([]);
  });
});

describe('demo page in Chromium, the Push to me button (dev mode)', () => {
  it('pushes a notice to the connected user through POST /dev/push and shows every session’s acked result', async () => {
    const node = dev();
    const first = await openDemo(node);
    const second = await openDemo(node);
    const firstId = await connectAs(first, 'browser-67', 'web');
    const secondId = await connectAs(second, 'browser-67', 'app');
    // The page opened last is the one in front; a page in the background gets no animation frames, which slows clicks.
    await first.page.bringToFront();
    const button = first.page.getByRole('button', { name: 'Push to me', exact: true });
    expect(await button.isVisible()).toBe(true);

    await button.click();
    await untilText(first.page.locator('#pushSummary'), '2 session(s): 2 acked, 0 timed out, 0 failed');
    const rows = first.page.locator('#pushResults tbody tr');
    expect(await rows.evaluateAll((r) => r.map((row) => [...row.children].map((td) => td.textContent)))).toEqual([
      [firstId, 'web', 'acked', expect.stringMatching(/^\d+\.\d$/), '{"ok":true,"by":"web"}'],
      [secondId, 'app', 'acked', expect.stringMatching(/^\d+\.\d$/), '{"ok":true,"by":"app"}'],
    ]);
    // Both pages received it as any pushed event, and acked it.
    for (const demo of [first, second]) {
      const row = eventRow(demo, 'notice');
      await row.waitFor();
      expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toMatchObject({ text: 'hello from the demo page' });
    }

    // A user with no session: the page says so, and a refusal is shown with its code.
    await first.user.fill('nobody-67');
    await button.click();
    await untilText(first.page.locator('#pushSummary'), '0 session(s): 0 acked, 0 timed out, 0 failed');
    expect(await first.page.locator('#pushResults').isVisible()).toBe(false);
    await first.user.fill('x'.repeat(300));
    await button.click();
    await untilText(
      first.page.locator('#pushError'),
      /^POST \/dev\/push failed \(400, invalid_argument\): user must be at most 256 characters$/,
    );
    expect(first.pageErrors).toEqual([]);
    expect(second.pageErrors).toEqual([]);
  });
});

describe('demo page in Chromium, the offline inbox', () => {
  it('shows a push stored while the user was offline as replayed, with its message id, and a live push after it without the badge', async () => {
    const node = dev();
    const stored = await node.client.pushToUser({
      userId: 'browser-68',
      event: 'notice',
      data: { text: 'kept for later' },
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE,
    });
    expect(stored).toMatchObject({ deliveries: [], stored: true });
    expect((await node.client.listInbox({ userId: 'browser-68' })).messages.map((m) => m.messageId)).toEqual([stored.messageId]);

    const demo = await openDemo(node);
    await connectAs(demo, 'browser-68', 'pc');
    const replayed = eventRow(demo, 'notice');
    await replayed.waitFor();
    expect(await replayed.locator('.badge.replay').textContent()).toBe('replayed');
    expect(await replayed.locator('.badge.attempt').textContent()).toBe('attempt 1');
    expect(await replayed.locator('.msgid').textContent()).toBe(stored.messageId);
    expect(JSON.parse((await replayed.locator('pre').textContent()) ?? '')).toEqual({ text: 'kept for later' });
    await untilText(replayed.locator('.ack'), 'acked automatically with {"ok":true,"by":"pc"}');
    // The page's ack (sent by the library when the handler returned) took it out of the inbox.
    await expect.poll(async () => (await node.client.listInbox({ userId: 'browser-68' })).messages, { timeout: UI_TIMEOUT_MS }).toEqual([]);

    const live = await node.client.pushToUser({ userId: 'browser-68', event: 'update', data: { text: 'live now' } });
    expect(onlyDelivery(live)).toMatchObject({ status: DeliveryStatus.DELIVERY_STATUS_ACKED, ackData: { ok: true, by: 'pc' } });
    const row = eventRow(demo, 'update');
    await row.waitFor();
    expect(await row.locator('.badge').count()).toBe(0);
    expect(await row.locator('.msgid').textContent()).toBe(live.messageId);
    expect(await row.locator('.ack').textContent()).toBe('acked automatically with {"ok":true,"by":"pc"}');
    // Newest first; only the replayed row is marked.
    expect(await demo.events.locator('.name').allTextContents()).toEqual(['update', 'notice']);
    expect(await demo.page.locator('#events li.replayed').count()).toBe(1);
    expect(demo.pageErrors).toEqual([]);
  });

  it('with auto-ack off, an unacked stored push comes back replayed on the next connection', async () => {
    const node = dev();
    const demo = await openDemo(node);
    await demo.autoAck.uncheck();
    await connectAs(demo, 'browser-69', 'web');
    const pushed = await node.client.pushToUser({
      userId: 'browser-69',
      event: 'approve',
      data: { po: 9 },
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
      ackTimeoutMs: 300,
    });
    // Shown, never acked: the push timed out and the message was kept.
    expect(onlyDelivery(pushed).status).toBe(DeliveryStatus.DELIVERY_STATUS_TIMEOUT);
    expect(pushed.stored).toBe(true);
    const first = eventRow(demo, 'approve');
    expect(await first.locator('.badge').count()).toBe(0);
    expect(await first.locator('.ack').textContent()).toBe('awaiting ack Ack');

    await demo.disconnect.click();
    await untilText(demo.state, 'disconnected');
    // Clicking Ack on a closed connection's event sends nothing; the page says so.
    await first.getByRole('button', { name: 'Ack', exact: true }).click();
    await untilText(first.locator('.ack'), 'not acked: that connection is closed');
    await connectAs(demo, 'browser-69', 'web');
    const again = demo.events.first();
    await untilText(again.locator('.badge.replay'), 'replayed');
    expect(await again.locator('.badge.attempt').textContent()).toBe('attempt 2');
    expect(await again.locator('.msgid').textContent()).toBe(pushed.messageId);
    await again.getByRole('button', { name: 'Ack', exact: true }).click();
    await untilText(again.locator('.ack'), 'acked by hand with {"ok":true,"by":"web"}');
    await expect.poll(async () => (await node.client.listInbox({ userId: 'browser-69' })).messages, { timeout: UI_TIMEOUT_MS }).toEqual([]);
    expect(demo.pageErrors).toEqual([]);
  });

  it('a stored push replayed while its Ack is pending is not shown twice, and that one Ack acks the replay', async () => {
    const node = dev();
    const demo = await openDemo(node);
    await demo.autoAck.uncheck();
    const sessionId = await connectAs(demo, 'browser-71', 'pc');
    const pushed = node.client.pushToUser({
      userId: 'browser-71',
      event: 'approve',
      data: { po: 11 },
      deliveryMode: DeliveryMode.DELIVERY_MODE_STORE_IF_UNACKED,
      ackTimeoutMs: 15_000,
    });
    const row = eventRow(demo, 'approve');
    const ackButton = row.getByRole('button', { name: 'Ack', exact: true });
    await ackButton.waitFor();

    // The connection drops without a notice: the library reconnects on its own, and the inbox
    // replays the unacked message to the new session while its first handler still waits.
    node.app.local.get(sessionId)!.socket.conn.close();
    expect(await pushed).toMatchObject({ stored: true, deliveries: [{ status: DeliveryStatus.DELIVERY_STATUS_DISCONNECTED }] });
    await untilText(row.locator('.redelivered'), /delivered again \(attempt 2, replayed\), not handled twice$/);
    await untilText(demo.state, 'connected');
    expect(await demo.session.textContent()).not.toBe(sessionId);
    expect(await demo.events.count()).toBe(1);

    await ackButton.click();
    await untilText(row.locator('.ack'), 'acked by hand with {"ok":true,"by":"pc"}');
    await expect.poll(async () => (await node.client.listInbox({ userId: 'browser-71' })).messages, { timeout: UI_TIMEOUT_MS }).toEqual([]);
    expect(demo.pageErrors).toEqual([]);
  });
});

describe('demo page in Chromium, Push to me with a delivery mode (dev mode)', () => {
  it('keeps a notice for a user with no session in the offline inbox, for its TTL, and the page shows it replayed on connect', async () => {
    const node = dev();
    const demo = await openDemo(node);
    const mode = demo.page.getByLabel('Delivery');
    const ttl = demo.page.getByLabel('TTL seconds');
    const button = demo.page.getByRole('button', { name: 'Push to me', exact: true });
    const summary = demo.page.locator('#pushSummary');
    expect(await mode.locator('option').allTextContents()).toEqual(['live', 'store if unacked', 'store']);
    expect(await ttl.isDisabled()).toBe(true); // live pushes have no TTL
    await demo.user.fill('browser-70');
    await mode.selectOption('store');
    expect(await ttl.isEnabled()).toBe(true);

    // The endpoint checks the TTL by the gRPC API's rule, and the page shows its refusal.
    await ttl.fill('604801');
    await button.click();
    await untilText(
      demo.page.locator('#pushError'),
      'POST /dev/push failed (400, invalid_argument): ttlSeconds must be at most 604800 (PUSHGATE_INBOX_MAX_TTL_S), got 604801',
    );
    expect((await node.client.listInbox({ userId: 'browser-70' })).messages).toEqual([]);

    await ttl.fill('60');
    const before = Date.now();
    await button.click();
    await untilText(summary, '0 session(s): 0 acked, 0 timed out, 0 failed; kept in the offline inbox');
    const { messages } = await node.client.listInbox({ userId: 'browser-70' });
    expect(messages.map((m) => m.event)).toEqual(['notice']);
    const expiresIn = messages[0]!.expiresAt!.getTime() - before;
    expect(expiresIn).toBeGreaterThan(55_000);
    expect(expiresIn).toBeLessThan(65_000);

    await connectAs(demo, 'browser-70', 'app');
    const row = eventRow(demo, 'notice');
    await row.waitFor();
    expect(await row.locator('.badge.replay').textContent()).toBe('replayed');
    expect(await row.locator('.msgid').textContent()).toBe(messages[0]!.messageId);
    expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toMatchObject({ text: 'hello from the demo page' });
    await untilText(row.locator('.ack'), 'acked automatically with {"ok":true,"by":"app"}');
    await expect.poll(async () => (await node.client.listInbox({ userId: 'browser-70' })).messages, { timeout: UI_TIMEOUT_MS }).toEqual([]);

    // Back to live: a push to the connected page is not kept.
    await mode.selectOption('live');
    expect(await ttl.isDisabled()).toBe(true);
    await button.click();
    await untilText(summary, '1 session(s): 1 acked, 0 timed out, 0 failed');
    expect((await node.client.listInbox({ userId: 'browser-70' })).messages).toEqual([]);
    expect(demo.pageErrors).toEqual([]);
  });
});

describe('demo page in Chromium, node without dev mode (PUSHGATE_DEMO_PAGE on)', () => {
  it('shows the refusal of a pasted garbage token with its code, then connects with a real one', async () => {
    const node = await startNode({ PUSHGATE_CLIENT_TYPES: 'kiosk,pc', PUSHGATE_DEMO_PAGE: '1' });
    nodes.push(node);
    const demo = await openDemo(node);
    expect(await demo.clientType.locator('option').allTextContents()).toEqual(['kiosk', 'pc']);
    expect(await demo.token.isVisible()).toBe(true);

    await demo.token.fill('not-a-jwt');
    await demo.clientType.selectOption('kiosk');
    await demo.connect.click();
    await untilText(demo.state, 'refused');
    const error = await untilText(demo.error, /^Connection refused: .+ \(code: token_malformed\)$/);
    expect(error).toContain('token is not a valid JWT');
    expect(await demo.error.isVisible()).toBe(true);
    expect(await demo.session.textContent()).toBe('–');
    expect(await demo.connect.isEnabled()).toBe(true);
    expect(await demo.disconnect.isDisabled()).toBe(true);
    // The dev token endpoint is off here, and nothing connected.
    expect((await node.client.listSessions({ userId: 'not-a-jwt' })).sessions).toEqual([]);
    // So is the push endpoint behind the Push to me button, which the page does not show.
    expect(await demo.page.getByRole('button', { name: 'Push to me', exact: true }).isVisible()).toBe(false);
    const devPush = await fetch(`${node.httpUrl}/dev/push`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'kiosk-66', event: 'notice' }),
    });
    expect(devPush.status).toBe(403);
    expect(((await devPush.json()) as { error: { code: string } }).error.code).toBe('dev_mode_disabled');

    // A token the backend signed names the user in `sub`; pasting it fills in the user id.
    await demo.token.fill(await signToken('kiosk-66'));
    await untilText(demo.grpcurl, /"user_id":"kiosk-66"/);
    expect(await demo.user.inputValue()).toBe('kiosk-66');
    await demo.connect.click();
    await untilText(demo.state, 'connected');
    expect(await demo.error.isVisible()).toBe(false);
    const sessionId = (await demo.session.textContent()) ?? '';
    const { sessions } = await node.client.listSessions({ userId: 'kiosk-66' });
    expect(sessions.map((s) => [s.sessionId, s.clientType])).toEqual([[sessionId, 'kiosk']]);

    await demo.disconnect.click();
    await untilText(demo.state, 'disconnected');
    await expect
      .poll(async () => (await node.client.listSessions({ userId: 'kiosk-66' })).sessions, { timeout: UI_TIMEOUT_MS })
      .toEqual([]);
    expect(demo.pageErrors).toEqual([]);
  });
});
