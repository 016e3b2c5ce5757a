/**
 * `notify swarm` as a user runs it: the built binary as a child process, against a gateway in this process (or the
 * embedded one). Exit codes (0 ok, 1 runtime, 2 usage, 99 thresholds), the result file, `--out -`, and Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeHistogram } from '../src/metrics/histogram.js';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { startTestGateway } from './helpers/gateway.js';
import { metricValue, scrape } from './helpers/http.js';
import { onCleanup, runCleanup } from './helpers/lifecycle.js';

beforeAll(ensureBuilt, 120_000);
afterEach(runCleanup);

const dir = mkdtempSync(join(tmpdir(), 'notify-swarm-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

interface Running {
  pid: number;
  /** Resolves when the process has exited; rejects after `timeoutMs` (and kills it). */
  exited: Promise<Exit>;
  stderr(): string;
}

/**
 * Starts `node bin/notify.js <args>` with a clean environment (no CI variables, no colour). `detached` puts it in a
 * process group of its own, so a signal can go to the whole group as a terminal's Ctrl-C does.
 */
function start(args: string[], { timeoutMs = 20_000, detached = false } = {}): Running {
  const child = spawn(process.execPath, [`${ROOT}bin/notify.js`, ...args], {
    env: { PATH: process.env.PATH, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<Exit>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`notify ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
  onCleanup(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { pid: child.pid!, exited, stderr: () => stderr };
}

const notify = (args: string[], timeoutMs?: number) => start(args, { timeoutMs }).exited;

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

// 20 SSE connections, then 1 s at 20 broadcasts/s: every subscriber is owed 20 probes, 400 in all.
const CONNS = 20;
const RUN = ['swarm', '--conns', String(CONNS), '--ramp', '200ms', '--duration', '1s', '--rate', '20/s', '--drain', '300ms', '--no-dashboard'];
const DELIVERED = CONNS * 20;

describe('notify swarm exit codes', () => {
  it('99 when a threshold is crossed, with a FAIL line for each crossed one and PASS for the rest', async () => {
    const gw = await startTestGateway();
    const r = await notify([...RUN, '--url', gw.url, '--threshold', 'p99<0.001ms', '--threshold', 'delivered>999999999', '--threshold', 'lost==0']);
    expect(r.code, r.stderr).toBe(99);
    expect(r.stderr).toMatch(/^FAIL p99<0\.001ms \(actual \d+\.\d{3}\)$/m);
    expect(r.stderr).toContain(`FAIL delivered>999999999 (actual ${DELIVERED})\n`);
    expect(r.stderr).toContain('PASS lost==0 (actual 0)\n');
    expect(r.stdout).toBe('');
  });

  it('0 when every threshold holds; --out writes a notify.result/1 file whose histograms decode to the summary', async () => {
    const gw = await startTestGateway();
    const file = join(dir, 'pass.json');
    const r = await notify([
      ...RUN,
      '--url',
      gw.url,
      '--threshold',
      'lost==0',
      '--threshold',
      'delivered>=400',
      '--threshold',
      'publish.failed==0',
      '--out',
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`result written to ${file}\n`);
    expect(r.stderr).toContain('PASS lost==0 (actual 0)\n');
    expect(r.stderr).toContain(`PASS delivered>=400 (actual ${DELIVERED})\n`);
    expect(r.stderr).toContain('PASS publish.failed==0 (actual 0)\n');
    expect(r.stderr).not.toMatch(/^FAIL/m);
    expect(r.stdout).toBe('');

    const result = JSON.parse(readFileSync(file, 'utf8'));
    expect(result.schema).toBe('notify.result/1');
    expect(result.stoppedEarly).toBeNull();
    expect(result.target).toEqual({ urls: [gw.url], embedded: false, profile: 'notify', source: 'built-in notify', resume: { sse: 'last-event-id' } });
    expect(result.config).toMatchObject({ conns: CONNS, rampMs: 200, durationMs: 1000, drainMs: 300, rate: 20, mix: { sse: 1 } });
    expect(result.summary.total.events).toMatchObject({ published: 20, expected: DELIVERED, delivered: DELIVERED, lost: 0, duplicated: 0 });
    expect(result.summary.transports.sse.events.delivered).toBe(DELIVERED);
    // The gateway saw the same run.
    expect(metricValue(await scrape(gw.url), 'notify_published_total', { stream: 'broadcast' })).toBe(20);

    const latency = result.histograms.total.latency;
    expect(typeof latency).toBe('string');
    expect(latency).toMatch(/^[A-Za-z0-9+/]+=*$/);
    const h = decodeHistogram(latency);
    expect(h.count).toBe(DELIVERED);
    expect(h.summary()).toEqual(result.summary.total.latency);
    expect(decodeHistogram(result.histograms.total.connect).count).toBe(CONNS);
    expect(decodeHistogram(result.histograms.sse.latency).count).toBe(DELIVERED);

    expect(Array.isArray(result.timeline)).toBe(true);
    expect(result.timeline.length).toBeGreaterThan(0);
    for (const p of result.timeline) expect(Object.keys(p).sort()).toEqual(['delivered', 'errors', 'open', 'p50', 'p99', 'published', 'reconnects', 't']);
    expect(result.timeline.reduce((a: number, p: { published: number }) => a + p.published, 0)).toBe(20);
    expect(result.thresholds.map((t: { expr: string; ok: boolean; actual: number }) => [t.expr, t.ok, t.actual])).toEqual([
      ['lost==0', true, 0],
      ['delivered>=400', true, DELIVERED],
      ['publish.failed==0', true, 0],
    ]);
  });

  it.each([
    [['--conns', '0'], '--conns must be >= 1 (got 0)'],
    [['--transport', 'bogus'], '--transport must be sse, ws, poll, socketio or mix:sse=70,ws=20,poll=10 (got "bogus")'],
    [['--storm', '50'], '--storm must look like 50%@20s (got "50")'],
    [['--threshold', 'p99<<3'], '--threshold "p99<<3": '],
    [['--rate', 'fast'], '--rate must be a rate like 20/s or 600/m (got "fast")'],
    [['--bogus'], "unknown option '--bogus'"],
  ])('2 for %j, naming the flag', async (args, message) => {
    const r = await notify(['swarm', ...args]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe('');
  });

  it('2 for a scenario whose server: has no url: (the swarm would subscribe to a server of its own)', async () => {
    const file = join(dir, 'no-url.yaml');
    writeFileSync(
      file,
      'schema: notify.scenario/1\nname: no-url\nserver: {command: "notify serve --port 18099", ready: "http://127.0.0.1:18099/healthz"}\nphases:\n  - {kind: steady, duration: 1s}\n',
    );
    const r = await notify(['swarm', '--scenario', file]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain(`scenario ${file}: server: needs url: too, where that server listens`);
  });

  it('1 when the server is unreachable, naming the URL, before opening anything', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const r = await notify([...RUN, '--url', url], 10_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toContain(`notify: cannot reach ${url} (ECONNREFUSED): is the server running?\n`);
    expect(r.stderr).toMatch(/hint: .*notify serve/);
    expect(r.stdout).toBe('');
  });
});

describe('notify swarm output', () => {
  it('--out - prints the result JSON on stdout and nothing else (embedded server)', async () => {
    const r = await notify([...RUN, '--out', '-']);
    expect(r.code, r.stderr).toBe(0);
    // Exactly one JSON document: progress, tables and notes went to stderr.
    const result = JSON.parse(r.stdout);
    expect(r.stdout.endsWith('}\n')).toBe(true);
    expect(result.schema).toBe('notify.result/1');
    expect(result.target.embedded).toBe(true);
    expect(result.target.urls).toHaveLength(1);
    expect(result.target.urls[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(result.summary.total.events).toMatchObject({ expected: DELIVERED, delivered: DELIVERED, lost: 0 });
    expect(r.stderr).toMatch(/started embedded notify serve at http:\/\/127\.0\.0\.1:\d+/);
    expect(r.stderr).not.toContain('result written to');
  });

  it('Ctrl-C mid-run stops early, still writes the result with stoppedEarly, and exits 0', async () => {
    const gw = await startTestGateway();
    const file = join(dir, 'interrupted.json');
    // A 30 s publishing phase that the test cuts short once probes are flowing.
    const run = start(
      ['swarm', '--url', gw.url, '--conns', String(CONNS), '--ramp', '200ms', '--duration', '30s', '--rate', '20/s', '--no-dashboard', '--out', file],
      {
        timeoutMs: 20_000,
        detached: true,
      },
    );
    // Probes the gateway has accepted so far (its own counter, read in this process).
    const published = async () => (await gw.metrics.published.get()).values.reduce((a, v) => a + v.value, 0);
    const deadline = Date.now() + 10_000;
    while ((await published()) < 5) {
      if (Date.now() > deadline) throw new Error(`the swarm did not publish 5 probes within 10 s; stderr:\n${run.stderr()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const signalledAt = Date.now();
    // What a terminal does on Ctrl-C: SIGINT to the whole foreground process group (swarm and its workers).
    process.kill(-run.pid, 'SIGINT');
    const r = await run.exited;
    expect(Date.now() - signalledAt, 'time from SIGINT to exit').toBeLessThan(10_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('stopping early: SIGINT received');
    expect(r.stderr).toContain(`result written to ${file}\n`);

    const result = JSON.parse(readFileSync(file, 'utf8'));
    expect(result.schema).toBe('notify.result/1');
    expect(result.stoppedEarly).toBe('SIGINT received');
    const events = result.summary.total.events;
    expect(events.published).toBeGreaterThanOrEqual(5);
    expect(events.published).toBeLessThan(600);
    // Stopping early is not losing: what was published before the stop was delivered.
    expect(events).toMatchObject({ expected: CONNS * events.published, delivered: CONNS * events.published, lost: 0 });
    expect(decodeHistogram(result.histograms.total.latency).count).toBe(events.delivered);
  });
});
