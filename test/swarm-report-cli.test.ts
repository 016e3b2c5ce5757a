/**
 * The built binary end to end, on a small real run (embedded server): `notify swarm --out --html --junit` with stderr
 * piped prints plain status lines and writes every artifact plus the job summary; on a pseudo-terminal (util-linux
 * `script`) the same run draws the ink dashboard, and TERM=dumb falls back to plain lines; `notify report` reads the
 * result back and compares it.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseResultText } from '../src/result/read.js';
import { ensureBuilt, ROOT } from './helpers/build.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-swarm-report-'));
const RUN = ['--conns', '20', '--ramp', '500ms', '--duration', '1500ms', '--drain', '500ms', '--rate', '20/s'];

function exec(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
const notify = (args: string[], env: Record<string, string> = {}) => exec(process.execPath, [`${ROOT}bin/notify.js`, ...args], env);
/** Runs the binary on a pseudo-terminal of 120x40 (util-linux `script`); the transcript is what the terminal got. */
const onTty = (args: string[], env: Record<string, string>) => {
  const cmd = `stty cols 120 rows 40; exec ${process.execPath} ${ROOT}bin/notify.js ${args.map((a) => `'${a}'`).join(' ')}`;
  return exec('script', ['-q', '-e', '-c', cmd, '/dev/null'], env);
};
const hasScript = existsSync('/usr/bin/script');

beforeAll(async () => {
  await ensureBuilt();
}, 180_000);

describe('notify swarm artifacts, not on a terminal', () => {
  const out = join(dir, 'result.json');
  const html = join(dir, 'report.html');
  const junit = join(dir, 'junit.xml');
  const summary = join(dir, 'step-summary.md');

  it('plain status lines on stderr, result + HTML + JUnit + job summary written', async () => {
    writeFileSync(summary, '');
    const r = await notify(['swarm', ...RUN, '--out', out, '--html', html, '--junit', junit, '--threshold', 'lost==0', '--threshold', 'p99<1ms'], {
      GITHUB_STEP_SUMMARY: summary,
    });
    // The swarm on this machine does not deliver within 1 ms at p99: that threshold fails on purpose.
    expect(r.code, r.stderr).toBe(99);
    expect(r.stderr).not.toContain('\x1b');
    expect(r.stderr).toMatch(/^\[done \d+s\/\d+s\] open 20\/20 connecting 0 reconnecting 0 failed 0 \| pub \d+\/s recv \d+\/s \| p50 /m);
    expect(r.stderr).toMatch(/^PASS lost==0 \(actual 0\)$/m);
    expect(r.stderr).toMatch(/^FAIL p99<1ms \(actual [\d.]+\)$/m);
    for (const f of [out, html, junit]) expect(r.stderr).toContain(`written to ${f}`);
    expect(r.stdout).toBe('');

    const result = parseResultText(out, readFileSync(out, 'utf8'));
    expect(result.summary.total.connections.target).toBe(20);
    expect(result.summary.total.events.lost).toBe(0);
    expect(result.summary.total.events.delivered).toBeGreaterThan(0);
    const page = readFileSync(html, 'utf8');
    expect(page).toContain(`<title>notify swarm ${result.run}</title>`);
    expect(page).toContain('id="chart-latency-distribution"');
    expect(page).not.toMatch(/<script[^>]+src=|<link[^>]+href=/);
    const xml = readFileSync(junit, 'utf8');
    expect(xml).toContain('<testsuite name="notify swarm ' + result.run + '" tests="2" failures="1"');
    expect(xml).toMatch(/<testcase classname="notify.thresholds" name="p99&lt;1ms" time="0">\s*<failure type="threshold" message="p99&lt;1ms crossed: actual/);
    const md = readFileSync(summary, 'utf8');
    expect(md).toContain(`### notify swarm \`${result.run}\``);
    expect(md).toContain('**1 of 2 thresholds crossed**');

    // notify report reads it back: the same tables, and a comparison with itself has no regression.
    const again = await notify(['report', out]);
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(`run ${result.run}`);
    expect(again.stderr).toMatch(/^FAIL p99<1ms/m);
    const same = await notify(['report', out, '--compare', out]);
    expect(same.code).toBe(0);
    expect(same.stderr).toContain('no regression');
  }, 60_000);
});

describe.skipIf(!hasScript)('notify swarm on a terminal', () => {
  it('draws the ink dashboard, keeps its last frame with the final audit figures, then the summary', async () => {
    const r = await onTty(['swarm', ...RUN], { TERM: 'xterm-256color' });
    expect(r.code, r.stdout).toBe(0);
    const screen = r.stdout.replace(/\x1b\[\??[0-9;]*[A-Za-z]/g, '');
    expect(screen).toMatch(/notify swarm r[0-9a-f]+ · 20 sse connections\r?\nphase +(ramp|publishing) {2}\d+s left in phase/);
    expect(screen).toMatch(/connections +█{20} 20\/20 open/);
    expect(screen).toMatch(/audit +lost 0 {2}duplicated 0 {2}out-of-order 0 {2}recovered 0 {2}misrouted 0 {2}\(of \d+ expected; final\)/);
    expect(screen).toContain('q or Ctrl-C: stop early');
    expect(screen).toMatch(/│ total │ 20 +│ 20 +│ 0 +│/);
    // No plain status line while the dashboard is up.
    expect(screen).not.toMatch(/^\[publishing /m);
  }, 60_000);

  it('q stops a long run early: the last frame says so, the result is still written', async () => {
    const out = join(dir, 'stopped.json');
    const cmd = `stty cols 120 rows 40; exec ${process.execPath} ${ROOT}bin/notify.js swarm --conns 20 --ramp 500ms --duration 60s --out '${out}'`;
    const child = spawn('script', ['-q', '-e', '-c', cmd, '/dev/null'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', TERM: 'xterm' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let screen = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (screen += c));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const started = Date.now();
    try {
      // Wait for a frame of the publishing phase with probes arriving, then press q.
      const deadline = Date.now() + 30_000;
      while (!/delivered [1-9]\d*\/s/.test(screen.replace(/\x1b\[\??[0-9;]*[A-Za-z]/g, ''))) {
        if (Date.now() > deadline) throw new Error(`no delivering frame within 30s:\n${screen.slice(-1500)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      child.stdin.write('q');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(Date.now() - started).toBeLessThan(45_000);
    const text = screen.replace(/\x1b\[\??[0-9;]*[A-Za-z]/g, '');
    expect(text).toContain('stopping: q pressed');
    expect(text).toMatch(/audit +lost \d+ {2}duplicated \d+ .*\(of \d+ expected; final\)/);
    expect(text).toContain(`result written to ${out}`);
    const result = parseResultText(out, readFileSync(out, 'utf8'));
    expect(result.stoppedEarly).toBe('q pressed');
    expect(result.summary.total.events.delivered).toBeGreaterThan(0);
  }, 90_000);

  it('TERM=dumb: plain status lines even on a terminal, no colour', async () => {
    const r = await onTty(['swarm', ...RUN], { TERM: 'dumb' });
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/^\[done \d+s\/\d+s\] open 20\/20/m);
    expect(r.stdout).not.toContain('stop early');
    expect(r.stdout).not.toMatch(/\x1b\[[0-9;]*m/);
  }, 60_000);
});
