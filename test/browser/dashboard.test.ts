import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { BrowserContext, Locator, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/chromium.js';
import { startNode, type TestNode } from '../support/node.js';

/**
 * The operator dashboard as an operator uses it, in real headless Chromium (Debian's, driven by
 * playwright-core) against a real node: three demo pages of one user connect, the dashboard counts
 * and lists them, pushes to them from its form (the pages ack) and kicks one. Screenshots of both
 * pages go to test-output/screenshots/.
 */

const UI_TIMEOUT_MS = 5000;
const SCREENSHOTS = resolve('test-output/screenshots');
const ADMIN_KEY = 'admin-key-0123456789abcdefghij';
const PUSH_KEY = 'push-key-0123456789abcdefghijk';

let browser: { context: BrowserContext; close(): Promise<void> } | undefined;
let context: BrowserContext | undefined;
const pages: Page[] = [];
const nodes: TestNode[] = [];

beforeAll(async () => {
  browser = await launchChromium(UI_TIMEOUT_MS);
  context = browser.context;
  await mkdir(SCREENSHOTS, { recursive: true });
});

afterEach(async () => {
  await Promise.all(pages.splice(0).map((page) => page.close()));
  await Promise.all(nodes.splice(0).map((node) => node.stop()));
});

afterAll(async () => {
  await browser?.close();
});

async function open(url: string, title: string): Promise<{ page: Page; errors: Error[] }> {
  if (context === undefined) throw new Error('the browser did not start');
  const page = await context.newPage();
  pages.push(page);
  const errors: Error[] = [];
  page.on('pageerror', (err) => errors.push(err));
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  expect(await page.title()).toBe(title);
  return { page, errors };
}

async function untilText(locator: Locator, text: string | RegExp): Promise<void> {
  await expect
    .poll(() => locator.textContent(), { timeout: UI_TIMEOUT_MS, interval: 20 })
    .toMatch(typeof text === 'string' ? new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : text);
}

async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(SCREENSHOTS, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/** A demo page connected as `userId` with `clientType`; returns the page and its session id. */
async function demoAs(node: TestNode, userId: string, clientType: string): Promise<{ page: Page; sessionId: string; errors: Error[] }> {
  const { page, errors } = await open(`${node.httpUrl}/`, 'pushgate demo');
  await page.getByLabel('User id').fill(userId);
  await page.getByLabel('Client type').selectOption(clientType);
  await page.getByRole('button', { name: 'Connect', exact: true }).click();
  await untilText(page.locator('#state'), 'connected');
  return { page, sessionId: (await page.locator('#session').textContent()) ?? '', errors };
}

describe('dashboard in Chromium', () => {
  it('counts and lists three pages of one user, pushes to them from its form (all ack), kicks one', async () => {
    const node = await startNode({ PUSHGATE_DEV: '1', PUSHGATE_DASHBOARD: '1' });
    nodes.push(node);
    const nodeId = node.app.config.server.nodeId;
    const demos = [await demoAs(node, 'ops-61', 'app'), await demoAs(node, 'ops-61', 'web'), await demoAs(node, 'ops-61', 'web')];

    const { page, errors } = await open(`${node.httpUrl}/dashboard`, 'pushgate dashboard');
    expect(await page.locator('#auth').isVisible()).toBe(false); // no keys: loopback callers need none
    await untilText(page.locator('#sessionsTotal'), '3');
    await untilText(page.locator('#usersOnline'), '1');
    await untilText(page.locator('#nodeCount'), '1');
    const byNode = page.locator('#byNode tr');
    expect(
      await byNode.evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-client-type'), r.lastElementChild?.textContent])),
    ).toEqual([
      ['app', '1'],
      ['web', '2'],
    ]);
    expect(await byNode.first().locator('td').first().textContent()).toBe(`${nodeId} (this node)`);
    // The connects show up in the recent presence events (the feed is followed from the first poll on).
    await page.getByRole('button', { name: 'Push', exact: true }).waitFor();

    // User lookup: three sessions, the pages' own ids.
    await page.locator('#lookupUser').fill('ops-61');
    await page.getByRole('button', { name: 'Look up', exact: true }).click();
    const rows = page.locator('#sessions tbody tr');
    await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT_MS }).toBe(3);
    expect(await rows.evaluateAll((r) => r.map((row) => row.getAttribute('data-session-id')))).toEqual(demos.map((d) => d.sessionId));
    await untilText(page.locator('#lookupSummary'), 'User ops-61: 3 session(s).');

    // Push from the form: every page acks (auto-ack) and the per-session results appear.
    await page.locator('#pushUser').fill('ops-61');
    await page.locator('#pushData').fill('{"text":"from the dashboard","n":7}');
    await page.getByRole('button', { name: 'Push', exact: true }).click();
    await untilText(page.locator('#pushSummary'), /^3 session\(s\): 3 acked, 0 timed out, 0 failed · message [\w-]+$/);
    const results = page.locator('#pushResults tbody tr');
    expect(await results.evaluateAll((r) => r.map((row) => [row.getAttribute('data-session-id'), row.children[3]?.textContent]))).toEqual(
      demos.map((d) => [d.sessionId, 'acked']),
    );
    expect(await results.locator('td:nth-child(6)').allTextContents()).toEqual([
      '{"ok":true,"by":"app"}',
      '{"ok":true,"by":"web"}',
      '{"ok":true,"by":"web"}',
    ]);
    for (const demo of demos) {
      const row = demo.page.locator('#events li').filter({ hasText: 'from the dashboard' });
      await row.waitFor();
      expect(JSON.parse((await row.locator('pre').textContent()) ?? '')).toEqual({ text: 'from the dashboard', n: 7 });
    }

    // Kick the second page's session: it is gone from the lookup, and that page says why.
    await rows.nth(1).getByRole('button', { name: 'Kick', exact: true }).click();
    await expect.poll(() => rows.count(), { timeout: UI_TIMEOUT_MS }).toBe(2);
    expect(await rows.evaluateAll((r) => r.map((row) => row.getAttribute('data-session-id')))).toEqual([
      demos[0]!.sessionId,
      demos[2]!.sessionId,
    ]);
    await untilText(demos[1]!.page.locator('#notice'), 'The server closed this session: kicked from the dashboard');
    expect((await node.client.listSessions({ userId: 'ops-61' })).sessions.map((s) => s.sessionId)).toEqual([
      demos[0]!.sessionId,
      demos[2]!.sessionId,
    ]);
    await untilText(page.locator('#sessionsTotal'), '2');
    await expect
      .poll(() => page.locator('#events li').evaluateAll((items) => items.map((i) => i.getAttribute('data-kind'))), {
        timeout: UI_TIMEOUT_MS,
      })
      .toContain('session_disconnected');
    expect(await page.locator('#events li').first().textContent()).toContain(`session ${demos[1]!.sessionId}`);
    expect(await page.locator('#events li').first().textContent()).toContain('reason kicked');

    // Rates need two samples a second apart; the page polls every 2 s.
    await expect.poll(() => page.locator('#rates tr[data-outcome="all_acked"]').count(), { timeout: 6000 }).toBe(1);
    await untilText(
      page.locator('#latency'),
      /^ack latency p50 [\d.]+ · p95 [\d.]+ · p99 [\d.]+ ms \(\d+ acks\)$|^ack latency: no acks in the window$/,
    );
    expect(await page.locator('#chart .uplot').count()).toBe(1);

    await screenshot(page, 'dashboard.png');
    await screenshot(demos[0]!.page, 'demo-page.png');
    expect(errors).toEqual([]);
    expect(demos.flatMap((d) => d.errors)).toEqual([]);
  });

  it('with API keys, asks for a key: refuses none (401) and a push-only key (403), works with an admin key', async () => {
    const node = await startNode({ PUSHGATE_DASHBOARD: '1', PUSHGATE_API_KEYS: `ops:admin:${ADMIN_KEY};backend:push:${PUSH_KEY}` });
    nodes.push(node);
    const statuses: number[] = [];
    const { page, errors } = await open(`${node.httpUrl}/dashboard`, 'pushgate dashboard');
    page.on('response', (res) => {
      if (res.url().includes('/dashboard/api/')) statuses.push(res.status());
    });
    await page.locator('#auth').waitFor();
    await untilText(page.locator('#authError'), /^A key is needed: .*\(unauthenticated\)$/);
    expect(await page.locator('#sessionsTotal').textContent()).toBe('–');

    await page.getByLabel('API key').fill(PUSH_KEY);
    await page.getByRole('button', { name: 'Use key', exact: true }).click();
    await untilText(page.locator('#authError'), 'Refused: API key "backend" lacks the admin scope the dashboard needs (permission_denied)');
    expect(statuses).toContain(403);

    await page.getByLabel('API key').fill(ADMIN_KEY);
    await page.getByRole('button', { name: 'Use key', exact: true }).click();
    await untilText(page.locator('#sessionsTotal'), '0');
    expect(await page.locator('#auth').isVisible()).toBe(false);
    expect(statuses.at(-1)).toBe(200);
    expect(
      await page.evaluate(() =>
        (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } }).sessionStorage.getItem(
          'pushgate.dashboardKey',
        ),
      ),
    ).toBe(ADMIN_KEY);
    expect(errors).toEqual([]);
  });
});
