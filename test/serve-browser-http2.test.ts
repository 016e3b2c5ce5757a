/**
 * The six-connection effect (seed 003): a browser opens at most six HTTP/1.1 connections per origin, and an
 * EventSource holds one for good, so a seventh stream from the same origin waits for one of the six to close. Over
 * HTTP/2 (`notify serve --tls-cert/--tls-key`) every stream is a stream of one connection and all seven receive.
 * Headless Debian `chromium` (playwright-core), its own EventSource, with --ignore-certificate-errors for the test
 * certificate.
 */
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from './helpers/browser.js';
import { startTestGateway, type TestGateway } from './helpers/gateway.js';
import { H2Client } from './helpers/h2-client.js';
import { metricValue } from './helpers/http.js';
import { runCleanup, until } from './helpers/lifecycle.js';
import { selfSignedCert } from './helpers/tls-cert.js';

const STREAMS = 7;
/** How long the seventh stream is given to open over HTTP/1.1 while six are open: it must not. */
const STALL_MS = 2000;

let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium(['--ignore-certificate-errors']);
}, 60_000);
afterAll(async () => {
  await browser?.close();
});
afterEach(runCleanup);

interface PageState {
  opened: number[];
  received: number[];
}

/** Opens STREAMS EventSources from the page's origin, one user each; the page keeps what opened and what arrived. */
async function openStreams(page: Page, gw: TestGateway): Promise<void> {
  const page0 = await page.goto(`${gw.url}/healthz`);
  expect(page0?.status()).toBe(200);
  await page.evaluate((n) => {
    const w = window as unknown as PageState & { sources: EventSource[] };
    w.opened = [];
    w.received = Array.from({ length: n }, () => 0);
    w.sources = [];
    for (let i = 0; i < n; i++) {
      const es = new EventSource(`/events?user=b${i}`);
      es.onopen = () => w.opened.push(i);
      es.addEventListener('notification', () => w.received[i]!++);
      w.sources.push(es);
    }
  }, STREAMS);
}

const state = (page: Page) => page.evaluate(() => ({ opened: (window as unknown as PageState).opened, received: (window as unknown as PageState).received }));

/** Publishes a broadcast (over h2 to the TLS gateway, plain fetch to the HTTP/1.1 one); returns `delivered`. */
async function broadcast(gw: TestGateway, title: string): Promise<number> {
  const body = { broadcast: true, notification: { type: 'system', title } };
  if (gw.url.startsWith('http:')) {
    const res = await fetch(`${gw.url}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    return ((await res.json()) as { delivered: number }).delivered;
  }
  const h2 = await H2Client.connect(gw.url);
  const r = await h2.publish(body);
  expect(r.status).toBe(202);
  h2.session.close();
  return JSON.parse(r.text).delivered as number;
}

describe('seven EventSource streams from one origin in Chromium', () => {
  it('over HTTP/1.1 the seventh stalls while six are open, and opens once one of them closes', async () => {
    const gw = await startTestGateway();
    const page = await browser.newPage();
    await openStreams(page, gw);
    await page.waitForFunction(() => (window as unknown as PageState).opened.length >= 6, undefined, { timeout: 10_000 });
    // Bounded wait: the seventh does not open (the server never even sees its request).
    await new Promise((r) => setTimeout(r, STALL_MS));
    expect((await state(page)).opened.length).toBe(6);
    expect(gw.hub.size).toBe(6);
    expect(await broadcast(gw, 'to six')).toBe(6);
    await page.waitForFunction(() => (window as unknown as PageState).received.filter((n) => n === 1).length === 6, undefined, { timeout: 10_000 });
    const { opened, received } = await state(page);
    const stalled = [...Array(STREAMS).keys()].find((i) => !opened.includes(i))!;
    expect(received[stalled]).toBe(0);
    // Closing one of the six frees its connection: the waiting stream takes it.
    const victim = opened[0]!;
    await page.evaluate((i) => (window as unknown as { sources: EventSource[] }).sources[i]!.close(), victim);
    await page.waitForFunction((i) => (window as unknown as PageState).opened.includes(i), stalled, { timeout: 10_000 });
    await page.close();
  }, 60_000);

  it('over HTTP/2 (TLS) all seven open over one connection and all seven receive', async () => {
    const { cert, key } = selfSignedCert();
    const gw = await startTestGateway({ tlsCert: cert, tlsKey: key });
    const page = await browser.newPage();
    await openStreams(page, gw);
    await page.waitForFunction((n) => (window as unknown as PageState).opened.length === n, STREAMS, { timeout: 10_000 });
    await until(() => gw.hub.size === STREAMS, 'seven subscribers on the server');
    const metrics = await gw.metrics.registry.metrics();
    // The page load and its seven streams share one h2 session (a speculative spare connection of Chromium's aside).
    expect(metricValue(metrics, 'notify_http2_sessions')).toBeGreaterThanOrEqual(1);
    expect(metricValue(metrics, 'notify_http2_sessions')).toBeLessThanOrEqual(2);
    expect(await broadcast(gw, 'to seven')).toBe(STREAMS);
    await page.waitForFunction((n) => (window as unknown as PageState).received.filter((x) => x === 1).length === n, STREAMS, { timeout: 10_000 });
    await page.close();
  }, 60_000);
});
