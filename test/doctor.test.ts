/** Machine limits: /proc parsers, planCapacity on synthetic limits, and `notify doctor` on this machine. */
import { execFile } from 'node:child_process';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import type { Io } from '../src/io.js';
import {
  checkLimits,
  FD_RESERVE,
  parseOpenFiles,
  parsePortRange,
  planCapacity,
  readLimits,
  type LimitSources,
  type SystemLimits,
} from '../src/capacity/planner.js';
import type { DoctorReport } from '../src/commands/doctor.js';
import { ensureBuilt, ROOT } from './helpers/build.js';

const GB = 1024 ** 3;

function limits(over: Partial<SystemLimits> = {}): SystemLimits {
  return {
    platform: 'linux',
    nodeVersion: '20.20.2',
    cpus: 8,
    freeMemoryBytes: 16 * GB,
    totalMemoryBytes: 32 * GB,
    openFiles: { soft: 1_048_576, hard: 1_048_576 },
    ephemeralPorts: { low: 1024, high: 65535 },
    somaxconn: 4096,
    tcpTwReuse: 2,
    unreadable: [],
    ...over,
  };
}

const PROC_LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 524288               files
Max locked memory         8388608              8388608              bytes
`;

describe('/proc parsers', () => {
  it('reads soft and hard open files', () => {
    expect(parseOpenFiles(PROC_LIMITS)).toEqual({ soft: 1024, hard: 524288 });
    expect(parseOpenFiles('Max open files  unlimited  unlimited  files')).toEqual({ soft: Number.MAX_SAFE_INTEGER, hard: Number.MAX_SAFE_INTEGER });
    expect(parseOpenFiles('Max processes 10 10')).toBeUndefined();
  });

  it('reads the ephemeral port range', () => {
    expect(parsePortRange('32768\t60999\n')).toEqual({ low: 32768, high: 60999 });
    expect(parsePortRange('60999 32768')).toBeUndefined();
    expect(parsePortRange('')).toBeUndefined();
  });

  it('reads what it can and lists the rest (non-Linux), never throws', () => {
    const src: LimitSources = {
      readFile(path) {
        if (path === '/proc/self/limits') return PROC_LIMITS;
        throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      },
      platform: 'darwin',
      nodeVersion: '22.1.0',
      cpus: 4,
      freeMemoryBytes: GB,
      totalMemoryBytes: 8 * GB,
    };
    const l = readLimits(src);
    expect(l.openFiles).toEqual({ soft: 1024, hard: 524288 });
    expect(l.ephemeralPorts).toBeUndefined();
    expect(l.unreadable).toEqual([
      '/proc/sys/net/ipv4/ip_local_port_range (ENOENT)',
      '/proc/sys/net/core/somaxconn (ENOENT)',
      '/proc/sys/net/ipv4/tcp_tw_reuse (ENOENT)',
    ]);
    const rows = checkLimits(l);
    expect(rows.find((r) => r.check === 'Ephemeral ports')).toMatchObject({ value: 'unknown', verdict: 'unknown' });
    expect(rows.find((r) => r.check === 'Ephemeral ports')!.advice).toContain('ip_local_port_range (ENOENT)');
    const plan = planCapacity(l, 5000);
    expect(plan.addressesNeeded).toBe(1);
    expect(plan.notes.join('\n')).toContain('ephemeral port range unknown');
  });
});

describe('planCapacity', () => {
  it('fits: one process, one address', () => {
    const plan = planCapacity(limits(), 10_000);
    expect(plan).toMatchObject({ fits: true, workersNeeded: 1, addressesNeeded: 1, perProcess: 1_048_576 - FD_RESERVE, perAddress: 64512, problems: [] });
  });

  it('needs workers when ulimit -n is a hard limit', () => {
    const l = limits({ openFiles: { soft: 20_000, hard: 20_000 } });
    const plan = planCapacity(l, 50_000);
    expect(plan).toMatchObject({ fits: false, workersNeeded: 3, addressesNeeded: 1, perProcess: 19_900 });
    expect(plan.problems).toHaveLength(1);
    expect(plan.problems[0]).toContain('a hard limit here');
    expect(plan.problems[0]).toContain('--workers 3');
    expect(planCapacity(l, 50_000, { workers: 3 })).toMatchObject({ fits: true, problems: [] });
    expect(planCapacity(l, 19_900).workersNeeded).toBe(1);
    expect(planCapacity(l, 19_901).workersNeeded).toBe(2);
  });

  it('says to raise the soft limit when the hard one allows it', () => {
    const plan = planCapacity(limits({ openFiles: { soft: 1024, hard: 524_288 } }), 5000);
    expect(plan.fits).toBe(false);
    expect(plan.workersNeeded).toBe(6);
    expect(plan.problems[0]).toContain('`ulimit -n 524288`');
  });

  it('an embedded server must hold every subscriber and the publisher in one process: refused past that, whatever the workers', () => {
    const hard = limits({ openFiles: { soft: 1024, hard: 1024 } });
    // 1500 fits the swarm side with 2 workers, but not one server process at 924 connections.
    expect(planCapacity(hard, 1500, { workers: 2 }).fits).toBe(true);
    const refused = planCapacity(hard, 1500, { workers: 2, embeddedServer: true });
    expect(refused.fits).toBe(false);
    expect(refused.problems).toEqual([expect.stringContaining('the embedded notify serve is one process and holds at most 924 connections at ulimit -n 1024')]);
    expect(refused.problems[0]).toContain('1500 subscribers and 32 publisher sockets need 1532');
    expect(refused.problems[0]).toContain('pass each with --url');
    expect(refused.problems[0]).not.toContain('ulimit -n 1024`');
    // The subscribers plus the publisher's sockets: 892 + 32 = 924 fits, one more does not.
    expect(planCapacity(hard, 892, { embeddedServer: true }).fits).toBe(true);
    expect(planCapacity(hard, 893, { embeddedServer: true }).fits).toBe(false);
    // A soft limit below the hard one: raising it is the first fix named.
    const soft = planCapacity(limits({ openFiles: { soft: 1024, hard: 65_536 } }), 1500, { workers: 2, embeddedServer: true });
    expect(soft.problems.join(' ')).toContain('raise the limit with `ulimit -n 65536` before running');
  });

  it('needs source addresses past the ephemeral range', () => {
    const l = limits({ ephemeralPorts: { low: 32768, high: 60999 } });
    const plan = planCapacity(l, 100_000);
    expect(plan).toMatchObject({ fits: false, workersNeeded: 1, addressesNeeded: 4, perAddress: 28_232 });
    expect(plan.problems[0]).toContain('--local-address 127.0.0.1-127.0.0.4');
    expect(planCapacity(l, 100_000, { addresses: 4 }).fits).toBe(true);
  });

  it('both at once, and more addresses than loopback has', () => {
    const both = planCapacity(limits({ openFiles: { soft: 20_000, hard: 20_000 }, ephemeralPorts: { low: 32768, high: 60999 } }), 100_000);
    expect(both).toMatchObject({ fits: false, workersNeeded: 6, addressesNeeded: 4 });
    expect(both.problems).toHaveLength(2);
    const tiny = planCapacity(limits({ ephemeralPorts: { low: 60000, high: 60009 } }), 10_000);
    expect(tiny.addressesNeeded).toBe(1000);
    expect(tiny.problems[0]).toContain('ip_local_port_range');
    const wide = planCapacity(limits(), 100_000);
    expect(wide.problems[0]).toContain('--local-address 127.0.0.1-127.0.0.2');
    expect(wide.problems[0]).not.toContain('ip_local_port_range'); // already as wide as it goes
    expect(planCapacity(limits({ ephemeralPorts: { low: 60000, high: 60009 } }), 10_000, { addresses: 254 }).fits).toBe(false);
  });

  it('checks memory', () => {
    const plan = planCapacity(limits({ freeMemoryBytes: 100 * 1024 ** 2 }), 50_000);
    expect(plan.fits).toBe(false);
    expect(plan.problems[0]).toMatch(/about \d+ MB of memory .* 100 MB is free/);
  });
});

function fakeIo(): { io: Io; out: () => string; err: () => string } {
  const o: string[] = [];
  const e: string[] = [];
  const sink = (into: string[]) => new Writable({ write: (c, _e, cb) => (into.push(String(c)), cb()) });
  return {
    io: { stdout: sink(o), stderr: sink(e), env: {}, interactive: false, color: false, onSignal: () => () => {} },
    out: () => o.join(''),
    err: () => e.join(''),
  };
}

const shell = (cmd: string) => new Promise<string>((resolve, reject) => execFile('sh', ['-c', cmd], (err, out) => (err ? reject(err) : resolve(out.trim()))));

describe('notify doctor on this machine', () => {
  it("--json returns sane numbers that match the shell's ulimit", async () => {
    const f = fakeIo();
    expect(await run(['doctor', '--json'], f.io)).toBe(0);
    const r = JSON.parse(f.out()) as DoctorReport;
    const l = r.limits;
    expect(l.cpus).toBeGreaterThanOrEqual(1);
    expect(l.freeMemoryBytes).toBeGreaterThan(0);
    expect(l.freeMemoryBytes).toBeLessThanOrEqual(l.totalMemoryBytes);
    if (l.platform !== 'linux') return;
    expect(l.unreadable).toEqual([]);
    // A child shell inherits this process's limits: an independent reading.
    expect(l.openFiles).toEqual({ soft: Number(await shell('ulimit -Sn')), hard: Number(await shell('ulimit -Hn')) });
    expect(l.openFiles!.hard).toBe(20_000); // this machine
    expect(r.connectionsPerProcess).toBe(l.openFiles!.soft - FD_RESERVE);
    expect(l.ephemeralPorts!.low).toBeGreaterThan(0);
    expect(l.ephemeralPorts!.high).toBeLessThanOrEqual(65535);
    expect(r.connectionsPerAddress).toBe(l.ephemeralPorts!.high - l.ephemeralPorts!.low + 1);
    expect(r.withAddresses).toEqual({ addresses: 8, connections: 8 * r.connectionsPerAddress! });
    expect(l.somaxconn).toBeGreaterThan(0);
    expect([0, 1, 2]).toContain(l.tcpTwReuse);
    expect(r.checks.map((c) => c.verdict)).not.toContain('unknown');
  });

  it('prints a table on stdout with a verdict and what to change per line', async () => {
    const f = fakeIo();
    expect(await run(['doctor'], f.io)).toBe(0);
    const out = f.out();
    for (const label of [
      'Open files (ulimit -n)',
      'Ephemeral ports',
      'Connections per process',
      'With 8 source addresses',
      'somaxconn',
      'tcp_tw_reuse',
      'Node.js',
    ]) {
      expect(out).toContain(label);
    }
    expect(out).toContain('what to change');
    expect(out).not.toMatch(/\x1b\[/); // no colour when not interactive
  });

  it('--conns plans and exits 1 when the plan does not fit as given', async () => {
    const big = fakeIo();
    expect(await run(['doctor', '--conns', '1000000000', '--json'], big.io)).toBe(1);
    const r = JSON.parse(big.out()) as DoctorReport;
    expect(r.plan).toMatchObject({ conns: 1_000_000_000, workers: 1, addresses: 1, fits: false });
    expect(r.plan!.problems.length).toBeGreaterThan(0);
    const small = fakeIo();
    expect(await run(['doctor', '--conns', '10'], small.io)).toBe(0);
    expect(small.out()).toContain('plan for 10 connections with 1 worker(s) and 1 source address(es): fits');
    const bad = fakeIo();
    expect(await run(['doctor', '--conns', '0'], bad.io)).toBe(2);
    expect(bad.err()).toContain('--conns must be >= 1 (got 0)');
  });

  it('--embedded plans as notify swarm without --url: its own notify serve must hold every subscriber too', async () => {
    await ensureBuilt();
    // At ulimit -n 1024 one process holds 924: 900 subscribers fit the swarm, not a server that also serves 32 publisher sockets.
    const doctor = (flags: string) =>
      new Promise<{ code: number; out: string }>((resolve) =>
        execFile('bash', ['-c', `ulimit -n 1024 && exec node bin/notify.js doctor --conns 900 --json ${flags}`], { cwd: ROOT }, (err, out) =>
          resolve({ code: err ? Number((err as { code?: number }).code) : 0, out }),
        ),
      );
    const plain = await doctor('');
    expect(plain.code).toBe(0);
    const embedded = await doctor('--embedded');
    expect(embedded.code).toBe(1);
    const plan = (JSON.parse(embedded.out) as DoctorReport).plan!;
    expect(plan.fits).toBe(false);
    expect(plan.problems).toEqual([expect.stringContaining('900 subscribers and 32 publisher sockets need 932')]);
  }, 30_000);
});
