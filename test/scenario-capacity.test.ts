/**
 * A scenario's `server:` against `ulimit -n` before the run: the process the swarm starts inherits its limit, so a
 * notify serve that cannot hold the subscribers is refused up front (exit 2, naming the field), as --conns is.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { run } from '../src/cli.js';
import { FD_RESERVE, PUBLISHER_SOCKETS, planCapacity, readLimits, type SystemLimits } from '../src/capacity/planner.js';
import { fakeIo } from './helpers/fake-io.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-scenario-capacity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GB = 1024 ** 3;
const limits = (openFiles: { soft: number; hard: number }): SystemLimits => ({
  platform: 'linux',
  nodeVersion: '20.20.2',
  cpus: 8,
  freeMemoryBytes: 16 * GB,
  totalMemoryBytes: 32 * GB,
  openFiles,
  ephemeralPorts: { low: 1024, high: 65535 },
  somaxconn: 4096,
  tcpTwReuse: 2,
  unreadable: [],
});
const field = 'scenario s.yaml: server.command';

describe("planCapacity with the scenario's server", () => {
  const hard = limits({ soft: 20_000, hard: 20_000 });
  const perProcess = 20_000 - FD_RESERVE;

  it('a notify serve must hold its subscribers and the publisher sockets under the limit it inherits', () => {
    const fits = perProcess - PUBLISHER_SOCKETS;
    const server = (conns: number, command = 'notify serve --port 18080') => ({ workers: 2, startedServer: { field, command, conns } });
    expect(planCapacity(hard, fits, server(fits))).toMatchObject({ fits: true, problems: [] });
    const refused = planCapacity(hard, fits + 1, server(fits + 1));
    expect(refused.fits).toBe(false);
    expect(refused.problems).toEqual([
      `${field} \`notify serve --port 18080\` is one notify serve process under ulimit -n 20000 (inherited from the swarm): it holds at most ${perProcess} ` +
        `connections (${FD_RESERVE} descriptors kept back), but ${fits + 1} subscribers and ${PUBLISHER_SOCKETS} publisher sockets need ${perProcess + 1}: ` +
        'lower conns, or start the servers yourself (several `notify serve` with a higher limit, or on other machines) and list each in url:',
    ]);
    // The swarm's own workers fit (2 of them); only the server does not.
    expect(planCapacity(hard, 30_000, { workers: 2 }).fits).toBe(true);
    expect(planCapacity(hard, 30_000, server(30_000, 'node bin/notify.js serve --port 1')).fits).toBe(false);
    expect(planCapacity(hard, 30_000, server(30_000, 'npx notify serve')).fits).toBe(false);
    // A server with half the subscribers (the other half on another --url) fits.
    expect(planCapacity(hard, 30_000, server(15_000)).fits).toBe(true);
  });

  it('says the soft limit can be raised when the hard one allows it', () => {
    const soft = limits({ soft: 1024, hard: 65_536 });
    const plan = planCapacity(soft, 5000, { workers: 6, startedServer: { field, command: 'notify serve', conns: 5000 } });
    expect(plan.fits).toBe(false);
    expect(plan.problems[0]).toContain('raise the limit with `ulimit -n 65536` before running (the server inherits it), or lower conns');
  });

  it('another server (its process model unknown) is a note, not a refusal', () => {
    const plan = planCapacity(hard, 30_000, { workers: 2, startedServer: { field, command: 'nginx -c /tmp/nchan.conf', conns: 30_000 } });
    expect(plan.fits).toBe(true);
    expect(plan.notes).toContain(
      `${field} \`nginx -c /tmp/nchan.conf\` runs under ulimit -n 20000: one process of it holds at most ${perProcess} connections (not checked: its process model is unknown)`,
    );
  });
});

describe('notify swarm --scenario with a server that cannot hold the run', () => {
  const perProcess = (() => {
    const l = readLimits();
    return l.openFiles && l.openFiles.soft < 1_000_000 ? l.openFiles.soft - FD_RESERVE : undefined;
  })();

  /** A scenario whose server (`command`, listening on 127.0.0.1:1) would get as many subscribers as one process can hold. */
  const tooBig = (name: string, command: string): string => {
    const file = join(dir, `${name}.yaml`);
    const lines = [
      'schema: notify.scenario/1',
      `name: ${name}`,
      `server: {command: "${command}", ready: "http://localhost:1/healthz"}`,
      'url: http://127.0.0.1:1',
      `conns: ${perProcess}`,
      'duration: 1s',
    ];
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };
  const swarmCli = async (args: string[]) => {
    const f = fakeIo({ interactive: false });
    const code = await run(['swarm', ...args, '--no-dashboard'], f.io);
    return { code, stderr: f.stderr() };
  };

  it.runIf(perProcess !== undefined)(
    'exit 2 before anything starts, naming server.command and the figures',
    async () => {
      // As many subscribers as one process can hold: the publisher's sockets no longer fit beside them. The port is never
      // bound: the run is refused before the server would start (localhost in ready, 127.0.0.1 in url: the same server).
      const file = tooBig('too-big', 'notify serve --port 1 --max-conns 0');
      const r = await swarmCli(['--scenario', file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--conns ${perProcess} does not fit this machine`);
      expect(r.stderr).toContain(`scenario ${file}: server.command \`notify serve --port 1 --max-conns 0\` is one notify serve process`);
      expect(r.stderr).toContain(`${perProcess} subscribers and ${PUBLISHER_SOCKETS} publisher sockets need ${perProcess! + PUBLISHER_SOCKETS}`);
      expect(r.stderr).not.toContain('started the scenario');
    },
    30_000,
  );

  it.runIf(perProcess !== undefined)(
    'a --url elsewhere takes the subscribers off the scenario server: not refused for it',
    async () => {
      // The command exits at once, so the run fails when it starts the server (exit 1), past the capacity check.
      const file = tooBig('elsewhere', 'false notify serve --port 1');
      const r = await swarmCli(['--scenario', file, '--url', 'http://127.0.0.1:2']);
      expect(r.stderr).not.toContain('does not fit this machine');
      expect(r.stderr).toContain("the scenario's server `false notify serve --port 1` exited (1)");
      expect(r.code).toBe(1);
    },
    30_000,
  );
});
