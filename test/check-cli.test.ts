/** `notify check` as a binary: usage errors (exit 2, naming the flag), the text report, exit 1 on a failed check; and the parts fed by hand. */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ChunkedDecoder } from '../src/check/chunked.js';
import { judgeInterval, judgeWatch } from '../src/check/idle.js';
import { ensureBuilt, exitWithin, runNotify } from './helpers/cli.js';
import { startTestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';
import { selfSignedCert } from './helpers/tls-cert.js';

beforeAll(ensureBuilt, 120_000);
afterEach(runCleanup);

describe('notify check (binary)', () => {
  it.each([
    [['check'], /missing required argument 'url'/],
    [['check', 'ftp://x'], /URL must start with http:\/\/ or https:\/\/ \(got "ftp:\/\/x"\)/],
    [['check', 'http://127.0.0.1:1', '--timeout', '1s'], /--timeout must be >= 2s \(got 1s\)/],
    [['check', 'http://127.0.0.1:1', '--origin', 'https://a.example/x'], /--origin must be an origin/],
    [['check', 'http://127.0.0.1:1', '--only', 'sse-nope'], /unknown check "sse-nope"; the checks are http-version, sse-headers, .*cors/],
    [['check', 'http://127.0.0.1:1', '--target', 'nope'], /--target must be a built-in profile/],
  ])('%j is a usage error (exit 2) that names the flag', async (args, message) => {
    const p = runNotify(args);
    expect(await exitWithin(p, 10_000)).toBe(2);
    expect(p.stderr()).toMatch(message);
  });

  it('prints PASS lines and exits 0 against notify serve; exits 1 when the server is not there', async () => {
    const gw = await startTestGateway({ heartbeat: '1s' });
    const ok = runNotify(['check', gw.url, '--only', 'sse-headers', 'sse-streaming', 'sse-heartbeat', '--timeout', '3s']);
    expect(await exitWithin(ok, 15_000), ok.stderr()).toBe(0);
    expect(ok.stdout()).toMatch(/^PASS {2}sse-streaming +each probe arrived on its own read/m);
    expect(ok.stdout()).toMatch(/3 passed, 0 warned, 0 failed, 0 skipped/);
    const down = runNotify(['check', 'http://127.0.0.1:9', '--only', 'sse-headers', '--timeout', '2s']);
    expect(await exitWithin(down, 15_000)).toBe(1);
    expect(down.stdout()).toMatch(/FAIL {2}sse-headers +no answer from the stream: connection failed: ECONNREFUSED/);
  });
});

describe('notify check over https (notify serve --tls-cert/--tls-key)', () => {
  it('with --insecure-tls every check runs over TLS (SSE, wss, long-poll, ALPN): http-version passes on h2, none fails', async () => {
    const { cert, key } = selfSignedCert();
    const gw = await startTestGateway({ heartbeat: '1s', tlsCert: cert, tlsKey: key });
    expect(gw.url).toMatch(/^https:/);
    const p = runNotify(['check', gw.url, '--insecure-tls', '--timeout', '3s', '--json']);
    expect(await exitWithin(p, 30_000), p.stderr()).toBe(0);
    const report = JSON.parse(p.stdout()) as { checks: { name: string; status: string; summary: string }[] };
    const status = Object.fromEntries(report.checks.map((c) => [c.name, c.status]));
    expect(status).toMatchObject({
      'http-version': 'pass',
      'sse-headers': 'pass',
      'sse-streaming': 'pass',
      'sse-heartbeat': 'pass',
      'sse-resume': 'pass',
      'ws-upgrade': 'pass',
      'ws-ping': 'pass',
    });
    // The hold outlasts a 3 s window: still held over https is a warning that asks for a longer --timeout.
    expect(status['poll-hold']).toBe('warn');
    expect(report.checks.filter((c) => c.status === 'fail')).toEqual([]);
  });

  it('without --insecure-tls a self-signed certificate fails every check (exit 1), naming it and the flag, no stack trace', async () => {
    const { cert, key } = selfSignedCert();
    const gw = await startTestGateway({ tlsCert: cert, tlsKey: key });
    const p = runNotify(['check', gw.url, '--only', 'http-version', 'sse-headers', 'ws-upgrade', 'poll-hold', '--timeout', '2s']);
    expect(await exitWithin(p, 20_000)).toBe(1);
    const out = p.stdout();
    for (const name of ['http-version', 'sse-headers', 'ws-upgrade', 'poll-hold']) {
      expect(out).toMatch(
        new RegExp(`^FAIL {2}${name} .*TLS certificate not accepted \\(DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate\\).*--insecure-tls$`, 'm'),
      );
    }
    expect(out).not.toMatch(/proxy_set_header Upgrade/);
    expect(p.stderr()).not.toMatch(/\bat .*\.js:\d+/);
  });
});

describe('check parts', () => {
  it('de-chunks across any split of the bytes', () => {
    const wire = Buffer.from('5\r\nhello\r\n1a\r\n' + 'x'.repeat(26) + '\r\n0\r\n\r\n');
    for (let cut = 1; cut < wire.length; cut++) {
      const d = new ChunkedDecoder();
      const out = Buffer.concat([d.push(wire.subarray(0, cut)), d.push(wire.subarray(cut))]).toString();
      expect(out).toBe('hello' + 'x'.repeat(26));
      expect(d.done).toBe(true);
    }
  });

  it('judges an interval against each named idle timeout', () => {
    const ok = judgeInterval('heartbeat every', 15_000, []);
    expect(ok.status).toBe('pass');
    const bad = judgeInterval('heartbeat every', 58_000, ['server fix']);
    expect(bad.status).toBe('fail');
    expect(bad.summary).toMatch(/Heroku router/);
    expect(bad.summary).not.toMatch(/nginx|ALB|Cloudflare/);
    expect(judgeInterval('heartbeat every', 70_000, []).summary).toMatch(/Heroku router, nginx proxy_read_timeout \(default\), AWS ALB/);
  });

  it('tells a cut connection, a too short window and a missing heartbeat apart', () => {
    const base = { noun: 'heartbeat', start: 0, serverFix: [] };
    const cut = judgeWatch({ ...base, windowMs: 12_000, beats: [], ended: { at: 5_100, lastByteAt: 100 } });
    expect(cut.status).toBe('fail');
    expect(cut.values.silenceMs).toBe(5000);
    expect(judgeWatch({ ...base, windowMs: 4000, beats: [] }).status).toBe('warn');
    expect(judgeWatch({ ...base, windowMs: 120_000, beats: [] }).status).toBe('fail');
    expect(judgeWatch({ ...base, windowMs: 120_000, beats: [1000, 31_000] }).values.intervalMs).toBe(30_000);
  });
});
