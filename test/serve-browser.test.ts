/**
 * What the README promises a person: open the gateway's page in a browser, and the browser's own EventSource shows
 * the notifications published to that user, then resumes after the server drops it (Last-Event-ID, sent by the
 * browser itself). Headless Debian `chromium` driven by playwright-core.
 */
import type { Browser } from 'playwright-core';
import { launchChromium } from './helpers/browser.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(runCleanup);

async function publish(url: string, body: unknown): Promise<{ ids: string[]; delivered: number }> {
  const res = await fetch(`${url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(202);
  return (await res.json()) as { ids: string[]; delivered: number };
}

describe('the demo page in a browser', () => {
  it('shows a user stream live through EventSource, and resumes with Last-Event-ID after a drop', async () => {
    const gw = await startTestGateway({ retry: '200ms' });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${gw.url}/?user=42`);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'open', undefined, { timeout: 10_000 });
    expect(await page.textContent('#who')).toBe('user 42');

    const first = await publish(gw.url, { user: '42', notification: { type: 'comment', title: 'Hello from the test', body: 'first' } });
    expect(first.delivered).toBe(1);
    await page.waitForSelector('#log li:has-text("Hello from the test")', { timeout: 10_000 });
    await publish(gw.url, { user: '43', notification: { type: 'comment', title: 'Not for 42' } });
    await publish(gw.url, { broadcast: true, notification: { type: 'system', title: 'For everyone' } });
    await page.waitForSelector('#log li:has-text("For everyone")', { timeout: 10_000 });
    expect(await page.locator('#log li:has-text("Not for 42")').count()).toBe(0);
    const cursor = await page.textContent('#cursor');
    expect(cursor).toBe(`${gw.epoch}.1.1`);

    // The server drops every stream (as on restart); events published meanwhile arrive after the browser reconnects
    // by itself with Last-Event-ID, exactly once.
    for (const sub of [...gw.hub.subscribers()]) sub.shutdown(200);
    await publish(gw.url, { user: '42', notification: { type: 'mention', title: 'Missed while away' } });
    await page.waitForSelector('#log li:has-text("Missed while away")', { timeout: 10_000 });
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'open', undefined, { timeout: 10_000 });
    expect(await page.locator('#log li:has-text("Missed while away")').count()).toBe(1);
    expect(await page.locator('#log li:has-text("Hello from the test")').count()).toBe(1);
    expect(await page.textContent('#cursor')).toBe(`${gw.epoch}.2.1`);
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
