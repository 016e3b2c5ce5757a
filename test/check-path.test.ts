/**
 * `notify check` against real servers: notify serve directly, behind nginx configured right and wrong in each way
 * issue 12 names (each found, with the right fix, and nothing found on the right config), and nginx + nchan through
 * its profile. Every run happens once in beforeAll, at once (they mostly wait), and the tests read the reports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import { run } from '../src/cli.js';
import { checkReportSchema, type CheckReport, type CheckResult } from '../src/check/schema.js';
import { fakeIo } from './helpers/fake-io.js';
import { startTestGateway } from './helpers/gateway.js';
import { runCleanup } from './helpers/lifecycle.js';
import { RIGHT_LOCATION, startNchanWith, startProxies } from './helpers/check-nginx.js';
import { selfSignedCert } from './helpers/tls-cert.js';

interface Run {
  code: number;
  report: CheckReport;
}

async function check(url: string, ...args: string[]): Promise<Run> {
  const f = fakeIo();
  const code = await run(['check', url, '--json', ...args], f.io);
  if (f.stdout() === '') throw new Error(`notify check ${url} printed no report (exit ${code}): ${f.stderr()}`);
  return { code, report: checkReportSchema.parse(JSON.parse(f.stdout())) };
}

function result(r: Run, name: string): CheckResult {
  const found = r.report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no check ${name} in the report`);
  return found;
}

/** Each check's status and summary, for assertion messages. */
const statuses = (r: Run) => r.report.checks.map((c) => `${c.status} ${c.name}: ${c.summary}`).join('\n');
const problems = (r: Run) => r.report.checks.filter((c) => c.status === 'fail' || c.status === 'warn');

const SECRET = 'check-test-secret';
const WINDOW = ['--timeout', '4s'];
const runs: Record<string, Run> = {};

beforeAll(async () => {
  const fast = await startTestGateway({ heartbeat: '1s', pollTimeout: '2s' });
  const slow = await startTestGateway({ heartbeat: '15s', pollTimeout: '2s' });
  const authed = await startTestGateway({ heartbeat: '1s', pollTimeout: '2s', auth: 'jwt', jwtSecret: SECRET, publishKey: 'pk' });
  const base = { upstream: fast.url };
  const { cert, key } = selfSignedCert();
  const urls = await startProxies([
    { name: 'right', ...base, location: RIGHT_LOCATION },
    {
      name: 'buffering',
      ...base,
      location: `${RIGHT_LOCATION}\n      proxy_buffering on;\n      proxy_ignore_headers X-Accel-Buffering;`.replace('proxy_buffering off;', ''),
    },
    { name: 'gzip', ...base, location: `${RIGHT_LOCATION}\n      gzip on;\n      gzip_types text/event-stream;` },
    { name: 'readTimeout', upstream: slow.url, location: RIGHT_LOCATION.replace('3600s', '5s') },
    { name: 'noUpgrade', ...base, location: '\n      proxy_http_version 1.1;\n      proxy_buffering off;' },
    { name: 'noChunked', ...base, location: `${RIGHT_LOCATION}\n      chunked_transfer_encoding off;` },
    { name: 'rightTls', ...base, location: RIGHT_LOCATION, tls: { cert, key, http2: true } },
    { name: 'noH2', ...base, location: RIGHT_LOCATION, tls: { cert, key, http2: false } },
  ]);
  const nchan = await startNchanWith('    nchan_eventsource_ping_interval 1;\n    nchan_websocket_ping_interval 1;');
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('ann').sign(new TextEncoder().encode(SECRET));
  const origin = ['--origin', 'https://app.example.com'];
  const jobs: [string, Promise<Run>][] = [
    ['direct', check(fast.url, ...WINDOW, ...origin)],
    ['authed', check(authed.url, ...WINDOW, '--token', token, '--publish-key', 'pk', ...origin)],
    ['authedNoToken', check(authed.url, ...WINDOW, '--only', 'auth-required', 'sse-headers')],
    ...Object.entries(urls).map(([name, url]): [string, Promise<Run>] => [
      name,
      check(url, ...(name === 'readTimeout' ? ['--timeout', '12s'] : WINDOW), ...(url.startsWith('https:') ? ['--insecure-tls'] : [])),
    ]),
    ['nchan', check(nchan, '--target', 'nchan', ...WINDOW)],
  ];
  for (const [name, r] of await Promise.all(jobs.map(async ([name, p]) => [name, await p] as const))) runs[name] = r;
}, 60_000);

afterAll(runCleanup);

describe('notify check on a right path', () => {
  it('finds nothing wrong with notify serve itself, and exits 0', () => {
    const r = runs.direct!;
    expect(r.report.counts.fail, statuses(r)).toBe(0);
    expect(r.code).toBe(0);
    for (const name of ['sse-streaming', 'sse-heartbeat', 'sse-resume', 'ws-upgrade', 'ws-ping', 'poll-hold', 'cors'])
      expect(result(r, name).status, name).toBe('pass');
    expect(result(r, 'sse-heartbeat').values.intervalMs).toBeGreaterThan(800);
    expect(result(r, 'sse-heartbeat').values.intervalMs).toBeLessThan(1300);
    expect(result(r, 'http-version').status).toBe('skip');
  });

  it('reports nothing at all behind nginx configured right', () => {
    const r = runs.right!;
    expect(problems(r), statuses(r)).toEqual([]);
    expect(result(r, 'sse-framing').values.framing).toBe('chunked');
  });

  it('reports nothing behind nginx over TLS with http2 on, and http-version passes (ALPN h2)', () => {
    const r = runs.rightTls!;
    expect(problems(r), statuses(r)).toEqual([]);
    expect(result(r, 'http-version').status).toBe('pass');
    expect(result(r, 'http-version').values.h2).toBe(true);
    for (const name of ['sse-streaming', 'sse-heartbeat', 'sse-resume', 'ws-upgrade', 'ws-ping', 'poll-hold'])
      expect(result(r, name).status, `${name}\n${statuses(r)}`).toBe('pass');
  });

  it('checks auth with --token: refused without it and with a bad one, open with it', () => {
    const r = runs.authed!;
    expect(r.report.counts.fail, statuses(r)).toBe(0);
    expect(result(r, 'auth-required').status).toBe('pass');
    expect(result(r, 'sse-resume').status).toBe('pass');
    expect(r.report.user).toBe('ann');
    // The notify profile sends the token as a header, so the preflight must allow Authorization: notify serve does.
    expect(result(r, 'cors').evidence.join('\n')).toMatch(/preflight OPTIONS for authorization, last-event-id: HTTP 204/);
    const none = runs.authedNoToken!;
    expect(result(none, 'auth-required').status).toBe('pass');
    expect(result(none, 'sse-headers').status).toBe('skip');
    expect(result(none, 'sse-headers').summary).toMatch(/pass --token/);
  });

  it('finds no failure on nginx + nchan through its profile', () => {
    const r = runs.nchan!;
    expect(r.report.counts.fail, statuses(r)).toBe(0);
    for (const name of ['sse-streaming', 'sse-heartbeat', 'sse-resume', 'ws-upgrade', 'ws-ping'])
      expect(result(r, name).status, `${name}\n${statuses(r)}`).toBe('pass');
    // nchan sends no retry: and no Cache-Control, frames its streams by closing and holds a long-poll until a message
    // comes: warnings, not failures.
    expect(
      problems(r)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['poll-hold', 'sse-framing', 'sse-headers', 'sse-retry']);
  });
});

describe('notify check on a wrong nginx config', () => {
  const cases: [string, string, string, RegExp][] = [
    ['buffering', 'sse-streaming', 'fail', /proxy_buffering off/],
    ['gzip', 'sse-compression', 'fail', /gzip_types/],
    ['readTimeout', 'sse-heartbeat', 'fail', /proxy_read_timeout/],
    ['readTimeout', 'ws-ping', 'fail', /proxy_read_timeout/],
    ['noUpgrade', 'ws-upgrade', 'fail', /proxy_set_header Upgrade \$http_upgrade/],
    ['noChunked', 'sse-framing', 'warn', /chunked_transfer_encoding on/],
    ['noH2', 'http-version', 'warn', /http2 on/],
  ];
  it.each(cases)('%s: %s is %s and names the fix', (variant, name, status, fix) => {
    const r = runs[variant]!;
    const c = result(r, name);
    expect(c.status, statuses(r)).toBe(status);
    expect(c.fix.join('\n')).toMatch(fix);
    expect(c.evidence.length).toBeGreaterThan(0);
  });

  it('says what it saw: the silence the 5 s read timeout cut, the 426 of a lost upgrade', () => {
    const silence = result(runs.readTimeout!, 'sse-heartbeat').values.silenceMs as number;
    expect(silence).toBeGreaterThan(4500);
    expect(silence).toBeLessThan(6500);
    expect(result(runs.noUpgrade!, 'ws-upgrade').values.status).toBe(426);
    expect(result(runs.gzip!, 'sse-compression').values.contentEncoding).toBe('gzip');
  });

  it('reports each misconfiguration only where it is, and exits 1 on a failure', () => {
    const own: Record<string, string[]> = {
      buffering: ['sse-headers', 'sse-streaming'],
      gzip: ['sse-compression'],
      readTimeout: ['sse-heartbeat', 'ws-ping'],
      noUpgrade: ['ws-upgrade', 'ws-ping'],
      noChunked: ['sse-framing'],
      noH2: ['http-version'],
    };
    for (const [variant, names] of Object.entries(own)) {
      const r = runs[variant]!;
      const found = problems(r).map((c) => c.name);
      expect(found.length, `${variant}\n${statuses(r)}`).toBeGreaterThan(0);
      expect(
        found.filter((n) => !names.includes(n)),
        `${variant}\n${statuses(r)}`,
      ).toEqual([]);
      expect(r.code).toBe(variant === 'noChunked' || variant === 'noH2' ? 0 : 1);
    }
  });
});
