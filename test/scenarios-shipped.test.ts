/**
 * Every scenario shipped in scenarios/ runs here through the built CLI, as a user runs it
 * (`notify swarm --scenario scenarios/NAME.yaml`), shortened so that none of them rots and the file stays quick:
 * the command line overrides the size (`--conns 30 --ramp 500ms --duration 1s --drain 500ms`), and a scenario with
 * phases or a server of its own runs from a copy in a temp dir whose phases are cut short and whose `server.command`
 * (`notify serve --port N ...`, which needs `notify` on the PATH) becomes `node bin/notify.js serve` on a free port.
 * nchan-fanout gets a real nginx + nchan (helpers/nchan.ts) through `--url`. Each run's result file is read back and
 * checked for the figure its scenario is there to show: storms aborted and back, slow readers cut and back, a
 * restart's ready time and its epoch resets, churn's reconnects without loss.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { PhaseReport } from '../src/result/schema.js';
import { parseResultText } from '../src/result/read.js';
import type { ResultFile } from '../src/result/schema.js';
import { parseDuration } from '../src/util/parse.js';
import { ensureBuilt, ROOT } from './helpers/build.js';
import { freePort, tempDir } from './helpers/child-server.js';
import { exitWithin, runNotify } from './helpers/cli.js';
import { runCleanup } from './helpers/lifecycle.js';
import { startNchan } from './helpers/nchan.js';

beforeAll(ensureBuilt, 120_000);
afterAll(runCleanup);

const SCENARIOS = `${ROOT}scenarios/`;
/** The shipped scenarios, each with its test below. */
const COVERED = ['smoke', 'fanout-10k-sse', 'mixed-transports', 'reconnect-storm', 'slow-consumers', 'churn', 'server-restart', 'ci-gate', 'nchan-fanout'];
/** What every shipped scenario is run with: small and short, plain status lines. */
const SHORT = ['--conns', '30', '--ramp', '500ms', '--duration', '1s', '--drain', '500ms', '--no-dashboard'];
/** Scenario runs at a time: each is a CLI, its workers and often a server, on two cores. */
const AT_ONCE = 2;
/** One shortened run's limit; they take 3-8 s alone. */
const RUN_LIMIT_MS = 40_000;

/** The YAML of a scenario file, as far as shortening it goes. */
interface ScenarioDoc {
  name: string;
  url?: string;
  server?: { command: string; ready: string };
  phases?: Record<string, unknown>[];
  thresholds?: string[];
  [field: string]: unknown;
}

const readDoc = (name: string) => parse(readFileSync(`${SCENARIOS}${name}.yaml`, 'utf8')) as ScenarioDoc;

/**
 * A phase as long as a test can afford: steady, storm windows and churn 1 s at most, a restart's down 500 ms. A slow
 * phase keeps 3 s: in less, the paused readers' kernel buffers take everything sent and the server cuts nobody.
 */
function shortenPhase(phase: Record<string, unknown>): Record<string, unknown> {
  const limits: Record<string, number> = { duration: phase.kind === 'slow' ? 3000 : 1000, over: 1000, down: 500 };
  const short = { ...phase };
  for (const [key, max] of Object.entries(limits)) {
    const value = phase[key];
    if (typeof value === 'string' || typeof value === 'number') short[key] = `${Math.min(parseDuration(key, value), max)}ms`;
  }
  return short;
}

/**
 * The scenario as the test runs it: the file itself, or a shortened copy when it has phases or a server. The copy's
 * server is this checkout's CLI on a free port, with `url` and `ready` moved to it.
 */
async function runnable(name: string): Promise<string> {
  const doc = readDoc(name);
  if (doc.phases === undefined && doc.server === undefined) return `scenarios/${name}.yaml`;
  const copy: ScenarioDoc = { ...doc, phases: doc.phases?.map(shortenPhase) };
  if (doc.server) {
    const m = /^notify serve --port (\d+)(.*)$/.exec(doc.server.command);
    if (!m) throw new Error(`${name}: server.command should read "notify serve --port N ...", as a user runs it; got "${doc.server.command}"`);
    const [, port, rest] = m;
    const free = await freePort();
    const move = (url: string) => url.replace(`127.0.0.1:${port}`, `127.0.0.1:${free}`);
    copy.server = { command: `${process.execPath} ${ROOT}bin/notify.js serve --port ${free}${rest}`, ready: move(doc.server.ready) };
    if (doc.url !== undefined) copy.url = move(doc.url);
  }
  const file = join(tempDir(`scenario-${name}`), `${name}.yaml`);
  writeFileSync(file, stringify(copy));
  return file;
}

/** A counting gate: at most `n` callers inside at a time. */
function gate(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let inside = 0;
  const waiting: (() => void)[] = [];
  return async (fn) => {
    if (inside >= n) await new Promise<void>((r) => waiting.push(r));
    inside++;
    try {
      return await fn();
    } finally {
      inside--;
      waiting.shift()?.();
    }
  };
}
const slot = gate(AT_ONCE);

interface Run {
  code: number | string;
  stderr: string;
  result: ResultFile;
}

/** Runs one shipped scenario, shortened, with `extra` flags; its exit code, stderr and result file. */
function runScenario(name: string, extra: string[] = []): Promise<Run> {
  return slot(async () => {
    const file = await runnable(name);
    const dir = tempDir(`scenario-out-${name}`);
    const p = runNotify(['swarm', '--scenario', file, ...SHORT, '--out', join(dir, 'result.json'), ...extra]);
    const code = await exitWithin(p, RUN_LIMIT_MS);
    if (!existsSync(join(dir, 'result.json'))) throw new Error(`${name}: exit ${code}, no result file; stderr:\n${p.stderr()}`);
    return { code, stderr: p.stderr(), result: parseResultText(name, readFileSync(join(dir, 'result.json'), 'utf8')) };
  });
}

const kinds = (r: Run) => (r.result.phases ?? []).map((p) => p.kind);
const phase = (r: Run, kind: PhaseReport['kind'], nth = 0): PhaseReport => (r.result.phases ?? []).filter((p) => p.kind === kind)[nth]!;
const failedThresholds = (r: Run) => r.result.thresholds.filter((t) => !t.ok).map((t) => `${t.expr} (actual ${t.actual})`);

/** What every run must show: exit 0 with every threshold held, the file's phases in order, probes delivered. */
function expectHealthy(r: Run, name: string): void {
  expect(failedThresholds(r), r.stderr).toEqual([]);
  expect(r.code, r.stderr).toBe(0);
  expect(kinds(r)).toEqual((readDoc(name).phases ?? []).map((p) => p.kind));
  expect(r.result.summary.total.events.delivered).toBeGreaterThan(0);
  expect(r.result.summary.total.connections.target).toBe(30);
}

describe.concurrent('every shipped scenario runs, shortened, through the CLI', () => {
  const T = { timeout: 120_000 };

  it('the tests below cover every file in scenarios/', () => {
    const shipped = readdirSync(SCENARIOS)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => f.replace(/\.yaml$/, ''));
    expect(shipped.sort()).toEqual([...COVERED].sort());
    // The README lists each of them with the command that runs it.
    const readme = readFileSync(`${SCENARIOS}README.md`, 'utf8');
    for (const name of shipped) expect(readme).toContain(`notify swarm --scenario scenarios/${name}.yaml`);
  });

  it('smoke: the embedded server, every probe to every subscriber', T, async () => {
    const r = await runScenario('smoke');
    expectHealthy(r, 'smoke');
    expect(r.result.target.embedded).toBe(true);
    const e = r.result.summary.total.events;
    expect(e.delivered).toBe(e.expected);
    expect(e.lost).toBe(0);
  });

  it('fanout-10k-sse: its own notify serve, SSE only, nothing lost', T, async () => {
    expect(readDoc('fanout-10k-sse')).toMatchObject({ conns: 10000, transport: 'sse' });
    const r = await runScenario('fanout-10k-sse');
    expectHealthy(r, 'fanout-10k-sse');
    expect(r.stderr).toMatch(/started the scenario's server `.*serve --port \d+ --max-conns 20000`/);
    expect(Object.keys(r.result.summary.transports)).toEqual(['sse']);
    expect(r.result.summary.total.events.lost).toBe(0);
  });

  it('mixed-transports: sse, ws and poll each delivered; the burst sent on both kinds of stream; nothing misrouted', T, async () => {
    const r = await runScenario('mixed-transports');
    expectHealthy(r, 'mixed-transports');
    for (const t of ['sse', 'ws', 'poll'] as const) expect(r.result.summary.transports[t]?.events.delivered, t).toBeGreaterThan(0);
    // count 100 on each: 100 broadcast probes and 100 user probes.
    expect(phase(r, 'burst').extras).toEqual({ sent: 200 });
    expect(r.result.summary.total.events.misrouted).toBe(0);
  });

  it('reconnect-storm: both storms aborted connections and every one came back, nothing lost', T, async () => {
    const r = await runScenario('reconnect-storm');
    expectHealthy(r, 'reconnect-storm');
    expect(r.result.storms).toHaveLength(2);
    // 50% of 30 at once, then 30% of the 30 open again.
    expect(r.result.storms.map((s) => s.aborted)).toEqual([15, 9]);
    for (const s of r.result.storms) expect(s.back).toBe(s.aborted);
    expect([phase(r, 'storm', 0).extras, phase(r, 'storm', 1).extras]).toEqual([{ storm: 1 }, { storm: 2 }]);
    expect(r.result.summary.total.connections.reconnects).toBe(24);
    expect(r.result.summary.total.events.lost).toBe(0);
  });

  it('slow-consumers: the paused readers are cut at 64 KB and all come back', T, async () => {
    const r = await runScenario('slow-consumers');
    expectHealthy(r, 'slow-consumers');
    const slow = phase(r, 'slow');
    expect(slow.paused).toBe(3);
    expect(slow.cut).toBeGreaterThan(0);
    expect(slow.back).toBe(slow.cut);
    expect(r.result.summary.total.errors['close-slow-consumer']).toBe(slow.cut);
    expect(r.result.summary.total.events.lost).toBe(0);
  });

  it('churn: connections closed and re-opened during the phase, none lost, no error counted', T, async () => {
    const r = await runScenario('churn');
    expectHealthy(r, 'churn');
    expect(phase(r, 'churn').reconnects).toBeGreaterThan(0);
    expect(r.result.summary.total.events.lost).toBe(0);
    expect(r.result.summary.total.errors).toEqual({});
  });

  it('server-restart: killed and started again; ready time, every subscriber reset by the new epoch, the loss reported', T, async () => {
    // The in-memory broker loses the history: the file must not claim a lossless restart.
    expect(readDoc('server-restart').thresholds?.filter((t) => t.startsWith('lost'))).toEqual([]);
    const r = await runScenario('server-restart');
    expectHealthy(r, 'server-restart');
    const restart = phase(r, 'server-restart');
    expect(restart.extras.readyMs).toBeGreaterThan(0);
    expect(restart.extras.downMs).toBeGreaterThanOrEqual(500);
    expect(restart.extras.allBackMs).not.toBeNull();
    expect(r.result.summary.total.errors['reset-epoch']).toBe(30);
    // What was sent while it was down, or not yet delivered when it died (a probe due just before the kill counts in
    // the phase before), is lost; once every subscriber is back on the new epoch nothing more is.
    expect(restart.events.lost).toBeGreaterThan(0);
    expect(r.result.phases!.at(-1)!.events.lost).toBe(0);
    expect(r.result.phases!.reduce((sum, p) => sum + p.events.lost, 0)).toBe(r.result.summary.total.events.lost);
  });

  it('ci-gate: its three thresholds hold, the result and JUnit files written', T, async () => {
    // The file writes notify-junit.xml where it runs; here it goes beside the result.
    const junit = join(tempDir('ci-gate-junit'), 'junit.xml');
    const r = await runScenario('ci-gate', ['--junit', junit]);
    expectHealthy(r, 'ci-gate');
    expect(r.result.thresholds.map((t) => [t.expr, t.ok])).toEqual([
      ['p99<250ms', true],
      ['lost==0', true],
      ['conns.failed==0', true],
    ]);
    expect(readFileSync(junit, 'utf8')).toMatch(/<testsuites name="notify" tests="3" failures="0"/);
  });

  it('nchan-fanout: the nchan profile against a real nginx + nchan, every transport delivered, nothing lost', T, async () => {
    const nchan = await startNchan();
    const r = await runScenario('nchan-fanout', ['--url', nchan.url]);
    expectHealthy(r, 'nchan-fanout');
    for (const t of ['sse', 'ws', 'poll'] as const) expect(r.result.summary.transports[t]?.events.delivered, t).toBeGreaterThan(0);
    expect(phase(r, 'burst').extras).toEqual({ sent: 100 });
    const e = r.result.summary.total.events;
    expect([e.lost, e.duplicated, e.misrouted]).toEqual([0, 0, 0]);
  });
});
