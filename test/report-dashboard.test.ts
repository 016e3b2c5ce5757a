/**
 * The live view of `notify swarm`: the ink dashboard drawn into a fake terminal (a PassThrough with isTTY, columns,
 * rows) from synthetic snapshots, its keys (`q`, Ctrl-C) as stop requests, NO_COLOR, and the plain status lines
 * chosen when the output is not an interactive terminal.
 */
import { describe, expect, it, vi } from 'vitest';
import { formatClock as clock, formatCompact as compact } from '../src/metrics/format.js';
import { bar, sparkline, timeLeft } from '../src/progress/format.js';
import { startDashboard } from '../src/progress/dashboard.js';
import { statusLine } from '../src/progress/status-line.js';
import { createProgressView } from '../src/progress/view.js';
import { fakeIo, fakeKeyboard, fakeTerminal } from './helpers/fake-io.js';
import { fixtureSnapshot } from './helpers/result-fixture.js';

// ink draws only the last frame, at unmount, when it believes it runs in CI (env CI at import time).
// ink reads CI once, at import (is-in-ci), and under CI draws only when it unmounts. The dashboard itself is never
// shown under CI (Io.interactive is false there), so this file tests terminal behaviour with CI unset, before ink
// loads, and so runs everywhere, CI included.
vi.hoisted(() => {
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
});
const SGR = /\x1b\[[0-9;]*m/;
// Cursor moves and line erases of ink's log-update, and synchronized-output brackets: not text.
const plain = (s: string) => s.replace(/\x1b\[\??[0-9;]*[A-Za-z]/g, '');
const plan = { rampMs: 2000, durationMs: 10_000, drainMs: 3000 };

/** Resolves when `read()` matches, polling every 10 ms; fails after `ms`. */
async function until(read: () => string, re: RegExp, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(read())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; got:\n${read().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('dashboard pieces', () => {
  it('sparkline scales to the largest value; bar fills to the fraction; numbers fit a column', () => {
    expect(sparkline([0, 1, 2, 4, 8], 10)).toBe('▁▂▃▅█');
    expect(sparkline([5, 0, 0, 10], 2)).toBe('▁█');
    expect(sparkline([0, 0], 5)).toBe('▁▁');
    expect(bar(0.5, 10)).toBe('█████░░░░░');
    expect(bar(2, 4)).toBe('████');
    expect(bar(NaN, 3)).toBe('░░░');
    expect(compact(950)).toBe('950');
    expect(compact(48_000)).toBe('48k');
    expect(compact(1_500_000)).toBe('1.50M');
    expect(clock(75_000)).toBe('1m15s');
  });

  it('time left per phase follows the plan, shifted when publishing started late', () => {
    expect(timeLeft('ramp', 500, 15_000, plan)).toEqual({ phaseMs: 1500, runMs: 14_500 });
    expect(timeLeft('publishing', 4000, 15_000, plan)).toEqual({ phaseMs: 8000, runMs: 11_000 });
    expect(timeLeft('drain', 13_000, 15_000, plan)).toEqual({ phaseMs: 2000, runMs: 2000 });
    // Publishing waited 700 ms for the ramp's last connections: the snapshot's totalMs says so.
    expect(timeLeft('publishing', 4000, 15_700, plan)).toEqual({ phaseMs: 8700, runMs: 11_700 });
    expect(timeLeft('done', 16_000, 15_000, plan)).toEqual({ phaseMs: 0, runMs: 0 });
  });
});

describe('ink dashboard in a fake terminal', () => {
  it('draws the live figures of a snapshot, then the final audit figures', async () => {
    const term = fakeTerminal(140, 40);
    const d = startDashboard({ out: term, color: false, title: 'notify swarm rtest', plan });
    d.note('started embedded notify serve at http://127.0.0.1:1234');
    d.update(fixtureSnapshot());
    await d.finish({ expected: 78_000, delivered: 77_990, lost: 10, duplicated: 2, outOfOrder: 3, recovered: 5, misrouted: 0 });
    const out = plain(term.text());
    for (const s of [
      'notify swarm rtest',
      'phase        publishing  8s left in phase · 11s left in run',
      '987/1000 open',
      'connecting 4  reconnecting 9  failed 7',
      'published 50/s  delivered 48k/s  (total published 100, delivered 78k)',
      'latency 1s   p50 5.3ms  p90 17.5ms  p99 95.5ms  max 131ms',
      'latency all  p50 4.8ms  p90 15.5ms  p99 88.5ms  max 131ms',
      'lost 10  duplicated 2  out-of-order 3  recovered 5  misrouted 0  (of 78000 expected; final)',
      'storm 1 (50% @ 3s): back 471/480',
      'ECONNRESET 3  HTTP 503 1',
      'event-loop p99 12.5ms  CPU 40%',
      'started embedded notify serve at http://127.0.0.1:1234',
    ])
      expect(out).toContain(s);
    // Sparklines of delivered/s and p99 from the timeline (0, 0, 30k, 48k and 0, 0, 40, 95 ms).
    expect(out).toMatch(/delivered\/s\s+▁▁▅█ 48k\/s/);
    expect(out).toMatch(/p99\s+▁▁▄█ 95\.0ms/);
    expect(out).toMatch(/connections\s+█{20} 987\/1000 open/);
    // NO_COLOR: no colour or style sequence anywhere.
    expect(term.text()).not.toMatch(SGR);
  });

  it('a shard that does not publish: the audit row says who settles lost, not lost 0', async () => {
    const term = fakeTerminal(140, 40);
    const d = startDashboard({ out: term, color: false, title: 'notify swarm rshard', plan: { ...plan, auditPending: 'settled by the merge' } });
    d.update(fixtureSnapshot());
    await d.finish({ expected: 0, delivered: 0, lost: 0, duplicated: 2, outOfOrder: 3, recovered: 0, misrouted: 1 });
    const out = plain(term.text());
    expect(out).toContain('duplicated 2  out-of-order 3  misrouted 1  (lost: settled by the merge)');
    expect(out).not.toContain('lost 0');
  });

  it('re-renders as snapshots arrive: ramp bar, then the saturation warning', async () => {
    const term = fakeTerminal(160, 40);
    const d = startDashboard({ out: term, color: true, title: 'notify swarm rlive', plan });
    d.update(
      fixtureSnapshot({ phase: 'ramp', elapsedMs: 1000, conns: { target: 1000, open: 250, connecting: 10, reconnecting: 0, failed: 0, reconnects: 0 } }),
    );
    await until(() => plain(term.text()), /█{5}░{15} 250\/1000 open \(ramping\)/);
    expect(plain(term.text())).toContain('phase        ramp  1s left in phase · 14s left in run');
    expect(plain(term.text())).toContain(
      'audit        lost 0  duplicated 0  out-of-order 0  recovered 0  misrouted 0  (of 50000 owed, sent > 5s ago; final after the drain)',
    );
    // No raw-mode stdin: only Ctrl-C (SIGINT) can stop the run, and the hint says so.
    expect(plain(term.text())).toMatch(/^Ctrl-C: stop early \(the result is still written\)$/m);
    d.update(fixtureSnapshot({ selfCheck: { eldP99Ms: 180, cpu: 0.99, saturated: true } }));
    await until(() => plain(term.text()), /WARNING: the swarm client is saturated; latency includes client-side delay/);
    expect(plain(term.text())).toContain('event-loop p99 180ms  CPU 99%  SATURATED');
    // The audit shows live: probes past the grace period, misrouted receipts at once; in red once anything is wrong.
    d.update(fixtureSnapshot({ misrouted: 12, audit: { expected: 60_000, lost: 7, duplicated: 2, outOfOrder: 1, recovered: 3, graceMs: 5000 } }));
    await until(() => plain(term.text()), /audit +lost 7 {2}duplicated 2 {2}out-of-order 1 {2}recovered 3 {2}misrouted 12 {2}\(of 60000 owed, sent > 5s ago/);
    expect(term.text()).toMatch(SGR);
    await d.finish();
  });

  it('the server side of the self-check: measuring, then the busiest server by its last scrape, SATURATED and a warning', async () => {
    const term = fakeTerminal(160, 40);
    const d = startDashboard({ out: term, color: false, title: 'notify swarm rserver', plan });
    const client = { eldP99Ms: 12.5, cpu: 0.4, saturated: false };
    d.update(fixtureSnapshot({ selfCheck: { ...client, server: { state: 'measuring', servers: [] } } }));
    await until(() => plain(term.text()), /server +measuring \(each --url \/metrics, every 5 s\)/);
    const calm = { url: 'http://127.0.0.1:18080', cpu: 0.35, cpuMax: 0.5, eldP99Ms: 3.25, saturated: false };
    const busy = { url: 'http://127.0.0.1:18081', cpu: 0.97, cpuMax: 0.99, eldP99Ms: 75, saturated: true };
    d.update(fixtureSnapshot({ selfCheck: { ...client, server: { state: 'measured', servers: [calm] } } }));
    await until(() => plain(term.text()), /server +event-loop p99 3\.3ms {2}CPU 35% \(worst 50%\) {2}http:\/\/127\.0\.0\.1:18080$/m);
    expect(plain(term.text())).not.toContain('WARNING');
    d.update(fixtureSnapshot({ selfCheck: { ...client, server: { state: 'measured', servers: [calm, busy] } } }));
    await until(
      () => plain(term.text()),
      /server +event-loop p99 75\.0ms {2}CPU 97% \(worst 99%\) {2}http:\/\/127\.0\.0\.1:18081 {2}\(busiest of 2\) {2}SATURATED/,
    );
    const frame = plain(term.text());
    expect(frame).toContain('WARNING: the server is saturated: http://127.0.0.1:18081 (CPU 97%, loop p99 75.0ms); latency includes the server-side delay');
    // The client is not saturated: its row says so and its warning is absent.
    expect(frame).not.toContain('the swarm client is saturated');
    // Lagging at little CPU: the server waited for a core, and the warning says so.
    const starved = { ...busy, cpu: 0.02, eldP99Ms: 180 };
    d.update(fixtureSnapshot({ selfCheck: { ...client, server: { state: 'measured', servers: [starved] } } }));
    await until(
      () => plain(term.text()),
      /WARNING: the server is saturated: http:\/\/127\.0\.0\.1:18081 \(CPU 2%, loop p99 180ms, lagging with little CPU of its own: the machine ran out of cores\)/,
    );
    d.update(fixtureSnapshot({ selfCheck: { ...client, server: { state: 'not-measured', servers: [] } } }));
    await until(() => plain(term.text()), /server +not measured \(no --url exposes Prometheus process_cpu_seconds_total\)/);
    await d.finish();
  });

  it('q and Ctrl-C on a raw-mode stdin request a stop; the frame says so', async () => {
    for (const [key, reason] of [
      ['q', 'q pressed'],
      ['\x03', 'Ctrl-C pressed'],
    ] as const) {
      const term = fakeTerminal();
      const keyboard = fakeKeyboard();
      const d = startDashboard({ out: term, stdin: keyboard, color: false, title: 't', plan });
      d.update(fixtureSnapshot());
      expect(keyboard.rawMode).toBe(true);
      // Keys are read: the hint offers q (ink writes frames before unmount only outside CI).
      await until(() => plain(term.text()), /q or Ctrl-C: stop early/);
      keyboard.write(key);
      await expect(d.stopRequested).resolves.toBe(reason);
      await d.finish();
      expect(plain(term.text())).toContain(`stopping: ${reason}`);
      expect(keyboard.rawMode).toBe(false);
    }
  });
});

describe('progress view choice', () => {
  it('not interactive: plain status lines every 5 snapshots and on done, notes as lines, no escape codes', async () => {
    const f = fakeIo({ interactive: false });
    const view = await createProgressView(f.io, { dashboard: true, title: 't', plan });
    expect(view.kind).toBe('lines');
    view.onNote('started embedded notify serve at http://127.0.0.1:9');
    for (let i = 1; i <= 7; i++) view.onSnapshot(fixtureSnapshot({ elapsedMs: i * 1000 }));
    view.onSnapshot(fixtureSnapshot({ phase: 'done', elapsedMs: 15_000, misrouted: 3 }));
    await view.finish();
    const lines = f.stderr().trimEnd().split('\n');
    expect(lines).toEqual([
      'started embedded notify serve at http://127.0.0.1:9',
      expect.stringMatching(
        /^\[publishing 5s\/15s\] open 987\/1000 connecting 4 reconnecting 9 failed 7 \| pub 50\/s recv 48000\/s \| p50 5\.3ms p99 95\.5ms max 131ms \| errors 4 \| lost 0 dup 0 ooo 0 \(>5s old\) \| storm1 back 471\/480$/,
      ),
      expect.stringMatching(/^\[done 15s\/15s\] open 987\/1000 .* \| errors 4 \| lost 0 dup 0 ooo 0 \(>5s old\) \| MISROUTED 3 \| storm1/),
    ]);
    expect(f.stderr()).not.toContain('\x1b');
  });

  it('status line: SERVER SATURATED for each saturated server, from its last scrape', () => {
    const server = {
      state: 'measured' as const,
      servers: [
        { url: 'http://127.0.0.1:18080', cpu: 0.2, cpuMax: 0.95, eldP99Ms: 4, saturated: false },
        { url: 'http://127.0.0.1:18081', cpu: 0.96, cpuMax: 0.96, eldP99Ms: 80, saturated: true },
      ],
    };
    const line = statusLine(fixtureSnapshot({ selfCheck: { eldP99Ms: 12.5, cpu: 0.4, saturated: false, server } }));
    expect(line).toMatch(/ \| SERVER SATURATED \(http:\/\/127\.0\.0\.1:18081 CPU 96%, loop p99 80\.0ms\)$/);
    expect(line).not.toContain('18080');
    expect(statusLine(fixtureSnapshot())).not.toContain('SATURATED');
  });

  it('interactive with --no-dashboard: a status line every snapshot; interactive: the dashboard', async () => {
    const f = fakeIo({ interactive: true });
    const lines = await createProgressView(f.io, { dashboard: false, title: 't', plan });
    expect(lines.kind).toBe('lines');
    lines.onSnapshot(fixtureSnapshot());
    lines.onSnapshot(fixtureSnapshot());
    expect(f.stderr().split('\n').filter(Boolean)).toHaveLength(2);

    const g = fakeIo({ interactive: true });
    const dash = await createProgressView(g.io, { dashboard: true, title: 'notify swarm rdash', plan });
    expect(dash.kind).toBe('dashboard');
    dash.onSnapshot(fixtureSnapshot());
    await dash.finish();
    expect(plain(g.stderr())).toContain('987/1000 open');
  });
});
