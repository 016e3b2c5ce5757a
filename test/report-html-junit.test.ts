/**
 * The HTML report opened in headless Chromium (playwright-core; Debian's `chromium`, listed in
 * scripts/test-servers.txt): its charts render, with no console error and no network request. The JUnit file is
 * parsed by the same browser's XML parser (DOMParser reports any well-formedness error as <parsererror>).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from './helpers/browser.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtml } from '../src/report/html.js';
import { escapeXml, renderJunit } from '../src/report/junit.js';
import { resultMarkdown } from '../src/report/markdown.js';
import type { ResultFile } from '../src/result/schema.js';
import { fixtureResult, latencies } from './helpers/result-fixture.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-html-'));
let browser: Browser;

beforeAll(async () => {
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
});

interface Opened {
  page: Page;
  problems: string[];
}

/** Opens a file; collects console errors/warnings, page errors and every request that is not the file itself. */
async function open(file: string): Promise<Opened> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  const url = pathToFileURL(file).href;
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    if (r.url() !== url) problems.push(`request: ${r.url()}`);
  });
  await page.goto(url);
  return { page, problems };
}

// A result with two transports, a storm, a failed threshold and text that needs escaping.
function richResult(): ResultFile {
  const r = fixtureResult({
    run: 'r<html>&"x"',
    conns: 200,
    published: 100,
    expected: 20_000,
    lost: 3,
    reconnects: 20,
    latencyMs: latencies(20_000, 11),
    connectMs: latencies(200, 12, 10),
    reconnectMs: latencies(20, 13, 40),
    errors: { 'WS 1006': 2 },
    thresholds: ['p99<5ms', 'lost_rate<1%', 'connect.p99<1s'],
  });
  const ws = fixtureResult({
    run: 'w',
    transport: 'ws',
    conns: 50,
    published: 100,
    expected: 5000,
    latencyMs: latencies(5000, 14, 2),
    connectMs: latencies(50, 15, 5),
  });
  r.summary.transports.ws = ws.summary.transports.ws;
  r.histograms.ws = ws.histograms.ws;
  r.storms = [{ atMs: 5000, share: 0.5, aborted: 100, back: 100, back99Ms: 850, back100Ms: 1200, failures: { ECONNREFUSED: 4 } }];
  r.selfCheck = { ...r.selfCheck, saturated: true, warning: 'the swarm client was saturated (<test>)' };
  return r;
}

describe('HTML report', () => {
  it('opens offline: four charts drawn on canvas, tables and verdicts present, no console error, no request', async () => {
    const result = richResult();
    const file = join(dir, 'report.html');
    writeFileSync(file, renderHtml(result));
    const { page, problems } = await open(file);
    await page.waitForSelector('body[data-charts-ready]', { timeout: 10_000 });
    expect(await page.getAttribute('body', 'data-charts-ready')).toBe('4');
    for (const id of ['chart-latency-distribution', 'chart-throughput', 'chart-latency-timeline', 'chart-connections']) {
      const canvas = page.locator(`#${id} canvas`);
      expect(await canvas.count(), id).toBe(1);
      const box = await canvas.boundingBox();
      expect(box!.width, id).toBeGreaterThan(300);
      expect(box!.height, id).toBeGreaterThan(100);
    }
    // The distribution chart has a series per transport and the total; legends show the names.
    const legend = await page.locator('#chart-latency-distribution .u-legend').innerText();
    for (const name of ['sse', 'ws', 'total']) expect(legend).toContain(name);
    // The canvas is not blank: some pixels are drawn.
    const drawn = await page.evaluate(() => {
      const c = document.querySelector('#chart-latency-distribution canvas') as HTMLCanvasElement;
      const px = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i]! > 0) n++;
      return n;
    });
    expect(drawn).toBeGreaterThan(1000);
    const text = await page.locator('body').innerText();
    expect(text).toContain('notify swarm r<html>&"x"');
    expect(text).toContain('1 of 3 thresholds crossed');
    expect(text).toContain('Self-check: the swarm client was saturated (<test>)');
    expect(await page.locator('table.thresholds tbody tr').count()).toBe(3);
    expect(text).toMatch(/#1\s+5\.00s\s+50%\s+100\s+100\s+850ms\s+1\.20s\s+ECONNREFUSED 4/);
    expect(await page.title()).toBe('notify swarm r<html>&"x"');
    expect(problems).toEqual([]);
    await page.close();
  });

  it("marks a scenario's phases on the timelines and lists them in a table", async () => {
    const result = richResult();
    const phase = {
      events: { expected: 100, delivered: 100, lost: 0 },
      latency: result.summary.total.latency,
      reconnects: 0,
      closed: {},
      paused: 0,
      cut: 0,
      back: 0,
    };
    result.phases = [
      { ...phase, kind: 'steady', startMs: 2000, endMs: 6000, extras: {} },
      { ...phase, kind: 'storm', startMs: 6000, endMs: 7000, reconnects: 100, extras: { storm: 1 } },
    ];
    const file = join(dir, 'phases.html');
    writeFileSync(file, renderHtml(result));
    const { page, problems } = await open(file);
    await page.waitForSelector('body[data-charts-ready]', { timeout: 10_000 });
    for (const id of ['chart-throughput', 'chart-latency-timeline', 'chart-connections']) {
      expect(await page.getAttribute(`#${id} .uplot`, 'data-phase-marks'), id).toBe('2');
    }
    expect(await page.locator('#chart-latency-distribution .uplot').getAttribute('data-phase-marks')).toBeNull();
    expect(await page.locator('table.phases tbody tr').count()).toBe(2);
    expect(await page.locator('table.phases tbody tr').nth(1).innerText()).toMatch(/^2 storm\s+6\.00s\s+7\.00s\s+100\s+100\s+0\s+100\s.*storm 1$/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a run without latency data says so instead of drawing an empty chart', async () => {
    const empty = fixtureResult({ run: 'empty', conns: 5, published: 0, expected: 0, latencyMs: [], connectMs: [], timeline: [] });
    const file = join(dir, 'empty.html');
    writeFileSync(file, renderHtml(empty));
    const { page, problems } = await open(file);
    await page.waitForSelector('body[data-charts-ready]', { timeout: 10_000 });
    expect(await page.getAttribute('body', 'data-charts-ready')).toBe('0');
    expect(await page.locator('#chart-latency-distribution').innerText()).toBe('no latency recorded');
    expect(await page.locator('#chart-throughput').innerText()).toBe('no data');
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('JUnit XML', () => {
  it('is well-formed XML (browser XML parser): a test case per threshold, a failure for each crossed one', async () => {
    const xml = renderJunit(richResult());
    const page = await browser.newPage();
    const parsed = await page.evaluate((text) => {
      const doc = new DOMParser().parseFromString(text, 'application/xml');
      const error = doc.getElementsByTagName('parsererror')[0];
      const suite = doc.querySelector('testsuite')!;
      return {
        error: error ? error.textContent : null,
        root: doc.documentElement.nodeName,
        suiteName: suite.getAttribute('name'),
        tests: suite.getAttribute('tests'),
        failures: suite.getAttribute('failures'),
        cases: [...doc.querySelectorAll('testcase')].map((c) => ({
          name: c.getAttribute('name'),
          failure: c.querySelector('failure')?.getAttribute('message') ?? null,
        })),
        out: suite.querySelector(':scope > system-out')!.textContent,
      };
    }, xml);
    await page.close();
    expect(parsed.error).toBeNull();
    expect(parsed.root).toBe('testsuites');
    expect(parsed.suiteName).toBe('notify swarm r<html>&"x"');
    expect(parsed.tests).toBe('3');
    expect(parsed.failures).toBe('1');
    expect(parsed.cases.map((c) => c.name)).toEqual(['p99<5ms', 'lost_rate<1%', 'connect.p99<1s']);
    expect(parsed.cases[0]!.failure).toMatch(/^p99<5ms crossed: actual \d+(\.\d+)?ms, limit < 5\.00ms$/);
    expect(parsed.cases.slice(1).map((c) => c.failure)).toEqual([null, null]);
    expect(parsed.out).toContain('WARNING: the swarm client was saturated (<test>)');
  });

  it('a run that measured nothing: a threshold with no data is a failure with its reason, each problem an <error>, in JUnit, Markdown and HTML', () => {
    const empty = fixtureResult({ run: 'rnone', conns: 3, published: 10, expected: 0, latencyMs: [], connectMs: [], failed: 3, thresholds: ['lost==0'] });
    empty.publisher = { ...empty.publisher, accepted: 0, failures: { 'http-401': 10 } };
    empty.problems = [
      { code: 'no-connection', message: 'no connection ever opened: 3 of the attempts failed (http-500 3)' },
      { code: 'no-probe-accepted', message: 'the server accepted none of the 10 probes sent (http-401 10)' },
    ];
    expect(empty.thresholds).toEqual([expect.objectContaining({ ok: false, noData: 'no data: 0 probes expected' })]);
    const xml = renderJunit(empty);
    expect(xml).toContain('<testsuite name="notify swarm rnone" tests="2" failures="1" errors="1"');
    expect(xml).toContain('<failure type="threshold" message="lost==0 failed: no data: 0 probes expected">');
    expect(xml).toContain('<error type="no-connection" message="no connection ever opened: 3 of the attempts failed (http-500 3)">');
    expect(xml).toContain('<error type="no-probe-accepted"');
    const md = resultMarkdown(empty);
    expect(md).toContain('> Run failed: no connection ever opened');
    expect(md).toContain('| ❌ | `lost==0` | no data: 0 probes expected |');
    expect(md).toContain('Publisher: sent 10, accepted 0; failed: http-401 10');
    const html = renderHtml(empty);
    expect(html).toContain('<p class="verdict fail">Run failed: the server accepted none of the 10 probes sent (http-401 10)</p>');
    expect(html).toContain('<td>no data: 0 probes expected</td>');
  });

  it('the server side of the self-check: servers table, bottleneck and warning in HTML, JUnit properties and Markdown', async () => {
    const r = fixtureResult({ run: 'rsrv', conns: 10, published: 10, expected: 100, latencyMs: [1, 2, 3], connectMs: [5] });
    const sides =
      'client not saturated (worst worker loop p99 3.0 ms, CPU 30%); server saturated: http://127.0.0.1:18080 (CPU 93% of a core on average, 99% at worst; loop p99 75.0 ms)';
    r.selfCheck = {
      ...r.selfCheck,
      servers: [
        { url: 'http://127.0.0.1:18080', samples: 7, cpuMean: 0.93, cpuMax: 0.99, eldP99Ms: 75, saturated: true },
        { url: 'http://127.0.0.1:18081', samples: 7, cpuMean: 0.2, cpuMax: 0.25, eldP99Ms: 4, saturated: false },
      ],
      bottleneck: 'server',
      sides,
      warning: `${sides}: latency figures are the server running out of CPU`,
    };
    const file = join(dir, 'servers.html');
    writeFileSync(file, renderHtml(r));
    const { page, problems } = await open(file);
    const rows = await page.locator('table.servers tbody tr').allInnerTexts();
    expect(rows).toEqual([
      expect.stringMatching(/^http:\/\/127\.0\.0\.1:18080\s+7\s+93%\s+99%\s+75ms\s+SATURATED$/),
      expect.stringMatching(/^http:\/\/127\.0\.0\.1:18081\s+7\s+20%\s+25%\s+4\.00ms\s+no$/),
    ]);
    const text = await page.locator('body').innerText();
    expect(text).toContain(`Bottleneck: server · ${sides}`);
    expect(text).toContain('Self-check: client not saturated');
    expect(await page.locator('table.workers tbody tr th').first().innerText()).toBe('worker 1');
    expect(problems).toEqual([]);
    await page.close();

    const xml = renderJunit(r);
    expect(xml).toContain('<property name="server.saturated" value="true"/>');
    expect(xml).toContain('<property name="bottleneck" value="server"/>');
    expect(xml).toContain('<property name="client.saturated" value="false"/>');
    expect(xml).toMatch(
      /WARNING: client not saturated .*; server saturated: http:\/\/127\.0\.0\.1:18080 \(CPU 93% .*: latency figures are the server running out of CPU/,
    );

    const md = resultMarkdown(r);
    expect(md).toContain(`> [!WARNING]\n> ${sides}: latency figures are the server running out of CPU`);
    expect(md).toContain('| http://127.0.0.1:18080 | 93% | 99% | 75ms | **SATURATED** |');
    expect(md).toContain('| http://127.0.0.1:18081 | 20% | 25% | 4.00ms | ok |');
    expect(md).toContain('Bottleneck: **server**');

    // Neither side saturated: no warning, the verdict still shown; not measured: said so, in each output.
    const calm = {
      ...r,
      selfCheck: {
        ...r.selfCheck,
        servers: [r.selfCheck.servers![1]!],
        bottleneck: 'neither' as const,
        sides: 'client not saturated (x); server not saturated: y',
        warning: undefined,
      },
    };
    expect(renderJunit(calm)).toContain('<property name="server.saturated" value="false"/>');
    expect(renderJunit(calm)).toContain('self-check: client not saturated (x); server not saturated: y');
    expect(resultMarkdown(calm)).toContain('Self-check: client not saturated (x); server not saturated: y');
    expect(resultMarkdown(calm)).toContain('Bottleneck: **neither**');
    const unmeasured = {
      ...r,
      selfCheck: {
        ...r.selfCheck,
        servers: undefined,
        bottleneck: 'unknown' as const,
        sides: 'client not saturated (x); server side not measured (z)',
        warning: undefined,
      },
    };
    expect(renderJunit(unmeasured)).toContain('<property name="server.saturated" value="not measured"/>');
    expect(renderHtml(unmeasured)).toContain('<p class="muted">Server side not measured: no --url exposed Prometheus');
    expect(resultMarkdown(unmeasured)).toContain('Self-check: client not saturated (x); server side not measured (z)');
    // A file from before the server side: no bottleneck property, nothing invented.
    const older = fixtureResult({ run: 'rold', conns: 1, published: 1, expected: 1, latencyMs: [1], connectMs: [1] });
    expect(renderJunit(older)).not.toContain('name="bottleneck"');
    expect(renderHtml(older)).not.toContain('Bottleneck:');
  });

  it('escapes markup and drops characters XML cannot carry', () => {
    expect(escapeXml('a<b>&"c\'\u0001\u0008\ud800z')).toBe('a&lt;b&gt;&amp;&quot;c&apos;z');
  });

  it('Markdown job summary: one row per transport and the total, thresholds with their verdicts', () => {
    const md = resultMarkdown(richResult());
    expect(md).toContain('**1 of 3 thresholds crossed**');
    expect(md).toMatch(/^\| sse \| 200 \|/m);
    expect(md).toMatch(/^\| ws \| 50 \|/m);
    expect(md).toMatch(/^\| \*\*total\*\* \| 200 \|/m);
    expect(md).toContain('| ❌ | `p99<5ms` |');
    expect(md).toContain('| ✅ | `lost_rate<1%` |');
  });
});
