/**
 * Runs that measure nothing, or lose part of what they measure, say so: the built binary against servers that
 * refuse everything, refuse the publish key, send garbage or never answer, a worker killed mid-run, and a run that
 * cannot fit its own embedded server. Each must end with the right exit code, the cause in the printed summary (not
 * only in the JSON), and a result file wherever the run started.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { startTestGateway } from './helpers/gateway.js';
import { listenForTest, onCleanup, runCleanup, until } from './helpers/lifecycle.js';

beforeAll(ensureBuilt, 120_000);
afterEach(runCleanup);

const dir = mkdtempSync(join(tmpdir(), 'notify-swarm-failures-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Exit {
  code: number | null;
  stderr: string;
}

interface Running {
  pid: number;
  exited: Promise<Exit>;
  stderr(): string;
}

/** `node bin/notify.js swarm <args>`, optionally under `ulimit -n`. */
function swarmCli(args: string[], { ulimit, timeoutMs = 40_000 }: { ulimit?: number; timeoutMs?: number } = {}): Running {
  const argv = [`${ROOT}bin/notify.js`, 'swarm', ...args];
  const child =
    ulimit === undefined
      ? spawn(process.execPath, argv, { env: { PATH: process.env.PATH, NO_COLOR: '1' }, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('bash', ['-c', `ulimit -n ${ulimit} && exec "$0" "$@"`, process.execPath, ...argv], {
          env: { PATH: process.env.PATH, NO_COLOR: '1' },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  onCleanup(() => void (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')));
  const exited = new Promise<Exit>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`swarm did not exit within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
  return { pid: child.pid!, exited, stderr: () => stderr };
}

type Handler = (req: IncomingMessage, res: ServerResponse, path: string) => void;

/** An HTTP server on 127.0.0.1 port 0: /healthz answers 200, everything else goes to `handler`. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/healthz') return void res.writeHead(200).end('ok');
    handler(req, res, path);
  });
  return listenForTest(server);
}

/** Answers POST /publish with 202 (one id per item) after reading the body. */
function accept(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.setEncoding('utf8').on('data', (c: string) => (body += c));
  req.on('end', () => {
    const n = body.trimStart().startsWith('[') ? (JSON.parse(body) as unknown[]).length : 1;
    res.writeHead(202, { 'Content-Type': 'application/json' }).end(JSON.stringify({ ids: Array.from({ length: n }, (_, i) => `i${i}`), delivered: 0 }));
  });
}

const SHORT = ['--conns', '3', '--ramp', '100ms', '--duration', '1s', '--rate', '10/s', '--drain', '300ms', '--no-dashboard'];
const GATE = ['--threshold', 'p99<250ms', '--threshold', 'lost==0'];
const readResult = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

describe('a run that measured nothing is a runtime failure, and says why', () => {
  it("the README's CI gate against a server answering 500 to every subscribe and publish: exit 1, not 0", async () => {
    const url = await serve((req, res) =>
      req.resume().on('end', () => res.writeHead(500, { 'Content-Type': 'application/json' }).end('{"error":{"code":"E_INTERNAL","message":"boom"}}')),
    );
    const out = join(dir, 'refused.json');
    const { code, stderr } = await swarmCli(['--url', url, ...SHORT, ...GATE, '--out', out]).exited;
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('FAIL p99<250ms (no data: 0 probes received)');
    expect(stderr).toContain('FAIL lost==0 (no data: 0 probes expected)');
    expect(stderr).toMatch(/RUN FAILED: no connection ever opened: \d+ of the attempts failed \(http-500 \d+\)/);
    expect(stderr).toMatch(/RUN FAILED: the server accepted none of the 10 probes sent \(http-500 10\)/);
    expect(stderr).toMatch(/publisher: sent 10, accepted 0; failed: http-500 10/);
    const result = readResult(out);
    expect(result.problems.map((p: { code: string }) => p.code)).toEqual(['no-connection', 'no-probe-accepted']);
    expect(result.thresholds.map((t: { ok: boolean; noData?: string }) => [t.ok, t.noData])).toEqual([
      [false, 'no data: 0 probes received'],
      [false, 'no data: 0 probes expected'],
    ]);
  }, 45_000);

  it('a forgotten --publish-key: every publish 401, shown by cause with the fix, exit 1', async () => {
    const gw = await startTestGateway({ publishKey: 'sekret' });
    const out = join(dir, 'nokey.json');
    const { code, stderr } = await swarmCli(['--url', gw.url, ...SHORT, ...GATE, '--threshold', 'publish.failed==0', '--out', out]).exited;
    expect(code, stderr).toBe(1);
    expect(stderr).toMatch(/publisher: sent 10, accepted 0; failed: http-401 10/);
    expect(readResult(out).thresholds[2]).toMatchObject({ metric: 'publish.failed', actual: 10, ok: false });
    expect(stderr).toMatch(
      /RUN FAILED: the server accepted none of the 10 probes sent \(http-401 10\): the server refused the publish key; pass the key it was started with \(--publish-key/,
    );
    expect(readResult(out).publisher.failures).toEqual({ 'http-401': 10 });
  }, 45_000);
});

describe('every failure class shows in the printed summary', () => {
  it('an SSE server that sends garbage: unparsable counted per transport', async () => {
    const url = await serve((req, res, path) => {
      if (path === '/publish') return accept(req, res);
      res.writeHead(200, { 'Content-Type': 'text/event-stream' });
      res.write('retry: 1000\n\n');
      // Lines that are no SSE field, and an unnamed event whose data is not JSON, each time a probe is published.
      const timer = setInterval(() => res.write('<html>oops</html>\n\ndata: not json\n\n'), 100);
      res.on('close', () => clearInterval(timer));
    });
    const out = join(dir, 'garbage.json');
    const { code, stderr } = await swarmCli(['--url', url, ...SHORT, '--threshold', 'lost==0', '--out', out]).exited;
    expect(code, stderr).toBe(99);
    const unparsable = readResult(out).summary.transports.sse.errors.unparsable as number;
    expect(unparsable).toBeGreaterThan(0);
    expect(stderr).toContain(`errors (sse): unparsable ${unparsable}`);
  }, 45_000);

  it('a long-poll server that never answers: each pending attempt is a failed connection, no-answer, and the run is exit 1', async () => {
    const url = await serve((req, res, path) => {
      if (path === '/publish') return accept(req, res);
      // GET /poll: held for good (until the swarm goes away).
    });
    const out = join(dir, 'silent.json');
    const { code, stderr } = await swarmCli(['--url', url, ...SHORT, '--transport', 'poll', '--out', out]).exited;
    expect(code, stderr).toBe(1);
    const poll = readResult(out).summary.transports.poll;
    expect(poll.connections.failed).toBe(3);
    expect(poll.errors).toEqual({ 'no-answer': 3 });
    expect(stderr).toContain('errors (poll): no-answer 3');
    expect(stderr).toContain('RUN FAILED: no connection ever opened: 3 of the attempts failed (no-answer 3)');
  }, 45_000);
});

/** Pids of the swarm worker processes forked by `pid`. */
function workerPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('worker-main.js');
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('a run never ends without a result file', () => {
  it('a worker killed mid-run: the result is written from the others, the loss recorded, exit 1', async () => {
    const gw = await startTestGateway();
    const out = join(dir, 'killed.json');
    const run = swarmCli([
      '--url',
      gw.url,
      '--conns',
      '10',
      '--workers',
      '2',
      '--ramp',
      '200ms',
      '--duration',
      '3s',
      '--rate',
      '10/s',
      '--drain',
      '300ms',
      '--no-dashboard',
      '--out',
      out,
    ]);
    let pids: number[] = [];
    await until(() => (pids = workerPids(run.pid)).length === 2 && gw.hub.size === 10, 'two workers holding 10 subscribers', 15_000);
    process.kill(pids[0]!, 'SIGKILL');
    const { code, stderr } = await run.exited;
    expect(code, stderr).toBe(1);
    expect(existsSync(out)).toBe(true);
    const result = readResult(out);
    expect(result.problems).toEqual([expect.objectContaining({ code: 'worker-failed' })]);
    expect(result.problems[0].message).toMatch(
      /swarm worker \d of 2 sent no result \(worker \d exited with SIGKILL\): the figures leave out their 5 connections/,
    );
    expect(result.summary.total.connections.target).toBe(5);
    expect(stderr).toMatch(/RUN FAILED: swarm worker \d of 2 sent no result/);
  }, 45_000);
});

describe('capacity is checked up front, the embedded server included', () => {
  it('--conns beyond what the embedded server can hold at this ulimit -n: exit 2 naming the limit and the fix, nothing started', async () => {
    const { code, stderr } = await swarmCli(['--conns', '1500', '--no-dashboard'], { ulimit: 1024 }).exited;
    expect(code, stderr).toBe(2);
    expect(stderr).toContain('the embedded notify serve is one process and holds at most 924 connections at ulimit -n 1024');
    expect(stderr).toContain('pass each with --url');
    expect(stderr).not.toContain('started embedded notify serve');
  }, 20_000);
});
