/**
 * The privacy check: a purpose-built SSE server that sends every user's notifications to every subscriber (and one
 * that routes them right, as a control). The swarm must count each foreign probe as misrouted, per transport, in the
 * result file, the printed summary, JUnit, HTML and Markdown, and `misrouted==0` must fail the run with exit 99.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { listenForTest, onCleanup, runCleanup } from './helpers/lifecycle.js';

beforeAll(ensureBuilt, 120_000);
afterEach(runCleanup);

const dir = mkdtempSync(join(tmpdir(), 'notify-misrouted-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Enough of the notify protocol for the swarm's SSE transport: GET /healthz, GET /events?user= (init, then
 * notification events), POST /publish (one request or an array) -> 202. `leak`: every user's notification goes to
 * every subscriber, as a gateway that forgot to filter by user would do; otherwise only to that user's subscribers.
 */
async function startServer(leak: boolean): Promise<string> {
  const subs = new Map<ServerResponse, string>();
  let seq = 0;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && url.pathname === '/healthz') return void res.writeHead(200).end('ok');
    if (req.method === 'GET' && url.pathname === '/events') {
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write(`retry: 3000\n\nid: e.0.${seq}\nevent: init\ndata: {"cursor":"e.0.${seq}","unread":[],"unreadCount":0}\n\n`);
      subs.set(res, url.searchParams.get('user') ?? '');
      res.on('close', () => subs.delete(res));
      return;
    }
    if (req.method === 'POST' && url.pathname === '/publish') {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => (body += c));
      req.on('end', () => {
        const parsed = JSON.parse(body) as unknown;
        const items = (Array.isArray(parsed) ? parsed : [parsed]) as { user?: string; broadcast?: boolean; notification: object }[];
        const ids: string[] = [];
        for (const item of items) {
          const id = `n${++seq}`;
          ids.push(id);
          const frame = `id: e.0.${seq}\nevent: notification\ndata: ${JSON.stringify({ id, createdAt: new Date().toISOString(), ...item.notification })}\n\n`;
          for (const [sub, user] of subs) if (leak || item.broadcast || item.user === user) sub.write(frame);
        }
        res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ids, delivered: subs.size }));
      });
      return;
    }
    res.writeHead(404).end();
  });
  return listenForTest(server);
}

interface Exit {
  code: number | null;
  stderr: string;
}

function swarmCli(args: string[], env: Record<string, string>, timeoutMs = 30_000): Promise<Exit> {
  const child = spawn(process.execPath, [`${ROOT}bin/notify.js`, 'swarm', ...args], {
    env: { PATH: process.env.PATH, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  onCleanup(() => void (child.exitCode === null && child.kill('SIGKILL')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`swarm did not exit within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

// 4 subscribers of users 1-4; 20 per-user probes (5 per user) and 10 broadcasts. Publishing starts once all 4 are
// open, so the leaky server hands each subscriber the other users' 15 probes: 60 misrouted receipts in all.
const CONNS = 4;
const USER_PROBES = 20;
const RUN = [
  '--transport',
  'sse',
  '--conns',
  String(CONNS),
  '--users',
  String(CONNS),
  '--ramp',
  '200ms',
  '--duration',
  '1s',
  '--user-rate',
  `${USER_PROBES}/s`,
  '--rate',
  '10/s',
  '--drain',
  '500ms',
  '--no-dashboard',
];
const GATE = ['--threshold', 'misrouted==0', '--threshold', 'lost==0'];

describe("misrouted: probes of another user's stream", () => {
  it("a server that sends every user's notifications to everyone: misrouted in every output, misrouted==0 fails with exit 99", async () => {
    const [leaky, right] = await Promise.all([startServer(true), startServer(false)]);
    const files = (name: string) => ({
      out: join(dir, `${name}.json`),
      junit: join(dir, `${name}.xml`),
      html: join(dir, `${name}.html`),
      md: join(dir, `${name}.md`),
    });
    const bad = files('leaky');
    const good = files('right');
    const run = (url: string, f: ReturnType<typeof files>) =>
      swarmCli(['--url', url, ...RUN, ...GATE, '--out', f.out, '--junit', f.junit, '--html', f.html], { GITHUB_STEP_SUMMARY: f.md });
    const [leakyExit, rightExit] = await Promise.all([run(leaky, bad), run(right, good)]);

    expect(rightExit.code, rightExit.stderr).toBe(0);
    const control = JSON.parse(readFileSync(good.out, 'utf8'));
    expect(control.summary.total.events).toMatchObject({ misrouted: 0, lost: 0, expected: CONNS * 10 + USER_PROBES });

    expect(leakyExit.code, leakyExit.stderr).toBe(99);
    const result = JSON.parse(readFileSync(bad.out, 'utf8'));
    const misrouted = CONNS * (USER_PROBES - USER_PROBES / CONNS);
    expect(result.summary.total.events).toMatchObject({ misrouted, lost: 0, delivered: CONNS * 10 + USER_PROBES });
    expect(result.summary.total.events.misroutedRate).toBeCloseTo(misrouted / (CONNS * 10 + USER_PROBES), 12);
    expect(result.summary.transports.sse.events.misrouted).toBe(misrouted);
    expect(result.thresholds).toEqual([
      expect.objectContaining({ expr: 'misrouted==0', actual: misrouted, ok: false }),
      expect.objectContaining({ expr: 'lost==0', actual: 0, ok: true }),
    ]);
    expect(leakyExit.stderr).toContain(`FAIL misrouted==0 (actual ${misrouted})`);
    expect(leakyExit.stderr).toMatch(new RegExp(`MISROUTED: ${misrouted} receipts`));
    // Live as well: the status line counts misrouted receipts as they come (here the last one, after the drain).
    expect(leakyExit.stderr).toMatch(new RegExp(`^\\[done .*\\| MISROUTED ${misrouted}\\b`, 'm'));
    expect(rightExit.stderr).not.toContain('MISROUTED');
    expect(readFileSync(bad.junit, 'utf8')).toMatch(new RegExp(`<failure type="threshold" message="misrouted==0 crossed: actual ${misrouted}`));
    expect(readFileSync(bad.junit, 'utf8')).toContain(`misrouted ${misrouted}`);
    // Markdown job summary: a misrouted column, the total row holding the count.
    const md = readFileSync(bad.md, 'utf8');
    expect(md).toContain('| out-of-order | misrouted |');
    expect(md).toMatch(new RegExp(`\\| \\*\\*total\\*\\* (\\| [^|]+){7}\\| ${misrouted} \\|`));
    expect(readFileSync(bad.html, 'utf8')).toMatch(new RegExp(`misrouted</div><div class="value">${misrouted}<`));
  }, 40_000);
});
