/** Scenario files (src/scenario): what a valid file turns into, the errors a wrong one gets, and command-line overrides. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadScenario, withOverrides, type Scenario } from '../src/scenario/load.js';
import { resolveSwarmOptions } from '../src/swarm/config.js';
import { loadTarget } from '../src/targets/load.js';
import { usage } from './helpers/usage.js';

const dir = mkdtempSync(join(tmpdir(), 'notify-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `lines` as a scenario file in the temp dir and returns its path. */
function scenarioFile(name: string, lines: readonly string[]): string {
  const path = join(dir, name);
  writeFileSync(path, lines.join('\n') + '\n');
  return path;
}

/** The DESIGN.md example, with every kind of field and phase. */
const FULL = [
  'schema: notify.scenario/1',
  'name: reconnect-storm',
  'description: half the swarm drops, the server and the broker restart',
  'target: notify',
  'url: http://127.0.0.1:18080',
  'server: {command: "notify serve --port 18080 --broker redis://127.0.0.1:16379", ready: "http://127.0.0.1:18080/healthz"}',
  'broker: {command: "redis-server --port 16379", ready: "tcp://127.0.0.1:16379"}',
  'transport: mix:sse=70,ws=20,poll=10',
  'conns: 2000',
  'users: "500"',
  'ramp: 10s',
  'rate: 10/s',
  'userRate: 0/s',
  'storm: ["10%@5s"]',
  'reconnect: backoff',
  'dashboard: false',
  'workers: 2',
  'targetVar: {publishKey: k1, port: 8080}',
  'payloadBytes: 200',
  'phases:',
  '  - {kind: steady, duration: 20s}',
  '  - {kind: storm, share: 50%}',
  '  - {kind: storm, share: 0.25, over: 5s}',
  '  - {kind: slow, share: 10%, duration: 10s}',
  '  - {kind: churn, rate: 600/m, duration: 20s}',
  '  - {kind: burst, count: 1000}',
  '  - {kind: burst, count: "10", streams: both}',
  '  - {kind: server-restart, signal: SIGTERM, down: 2s}',
  '  - {kind: broker-restart, down: 500ms}',
  '  - {kind: steady, duration: 1m}',
  'thresholds: ["p99<250ms", "lost==0"]',
  'out: {json: result.json, html: report.html, junit: junit.xml}',
];

describe('a valid scenario', () => {
  it('loads to the swarm flags it stands for, and its phases in ms, shares and rates per second', () => {
    const path = scenarioFile('full.yaml', FULL);
    const scenario = loadScenario(path);
    expect(scenario).toEqual<Scenario>({
      name: 'reconnect-storm',
      file: path,
      raw: {
        target: 'notify',
        url: ['http://127.0.0.1:18080'],
        transport: 'mix:sse=70,ws=20,poll=10',
        conns: '2000',
        users: '500',
        ramp: '10s',
        rate: '10/s',
        userRate: '0/s',
        storm: ['10%@5s'],
        reconnect: 'backoff',
        dashboard: false,
        workers: '2',
        targetVar: ['publishKey=k1', 'port=8080'],
        threshold: ['p99<250ms', 'lost==0'],
        out: 'result.json',
        html: 'report.html',
        junit: 'junit.xml',
      },
      phases: [
        { kind: 'steady', durationMs: 20_000 },
        { kind: 'storm', share: 0.5, overMs: 0 },
        { kind: 'storm', share: 0.25, overMs: 5000 },
        { kind: 'slow', share: 0.1, durationMs: 10_000 },
        { kind: 'churn', rate: 10, durationMs: 20_000 },
        { kind: 'burst', count: 1000, streams: 'broadcast' },
        { kind: 'burst', count: 10, streams: 'both' },
        { kind: 'server-restart', signal: 'SIGTERM', downMs: 2000 },
        { kind: 'broker-restart', signal: 'SIGKILL', downMs: 500 },
        { kind: 'steady', durationMs: 60_000 },
      ],
      server: { command: 'notify serve --port 18080 --broker redis://127.0.0.1:16379', ready: 'http://127.0.0.1:18080/healthz' },
      broker: { command: 'redis-server --port 16379', ready: 'tcp://127.0.0.1:16379' },
      payloadBytes: 200,
    });
  });

  it('its flags are what resolveSwarmOptions takes', () => {
    const config = resolveSwarmOptions(loadScenario(scenarioFile('resolve.yaml', FULL)).raw);
    expect(config).toMatchObject({ urls: ['http://127.0.0.1:18080'], conns: 2000, users: 500, rampMs: 10_000, rate: 10, userRate: 0, workers: 2 });
    expect(config.mix).toEqual({ sse: 0.7, ws: 0.2, poll: 0.1 });
    expect(config.storms).toEqual([{ share: 0.1, atMs: 5000 }]);
    expect(config.thresholds.map((t) => t.expr)).toEqual(['p99<250ms', 'lost==0']);
    expect(config.dashboard).toBe(false);
  });

  it('a minimal file: no flags, no phases; `out` as a string is the result file', () => {
    const scenario = loadScenario(
      scenarioFile('minimal.yaml', ['schema: notify.scenario/1', 'name: smoke', 'out: result.json', 'url: [http://a:1, http://b:2]']),
    );
    expect(scenario.phases).toEqual([]);
    expect(scenario.raw).toEqual({ out: 'result.json', url: ['http://a:1', 'http://b:2'] });
  });

  it("a target file is relative to the scenario file's directory; a built-in name or an absolute path is kept", () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(
      join(dir, 'sub', 'acme.yaml'),
      ['schema: notify.target/1', 'name: acme', 'subscribe:', '  sse: {url: "{base}/stream?user={user}"}', 'publish:', '  http: {url: "{base}/notify"}'].join(
        '\n',
      ),
    );
    const target = (value: string) =>
      loadScenario(scenarioFile(join('sub', 's.yaml'), ['schema: notify.scenario/1', 'name: t', `target: ${value}`])).raw.target;
    expect(target('./acme.yaml')).toBe(join(dir, 'sub', 'acme.yaml'));
    expect(target('acme.yaml')).toBe(join(dir, 'sub', 'acme.yaml'));
    expect(target('../sub/acme.yaml')).toBe(join(dir, 'sub', 'acme.yaml'));
    expect(loadTarget(target('./acme.yaml'), []).name).toBe('acme');
    expect(target('nchan')).toBe('nchan');
    expect(target(join(dir, 'elsewhere.yaml'))).toBe(join(dir, 'elsewhere.yaml'));
  });

  it('reads the file through the given reader', () => {
    const scenario = loadScenario('virtual.yaml', (p) => (p === 'virtual.yaml' ? 'schema: notify.scenario/1\nname: v\nconns: 5\n' : ''));
    expect(scenario).toMatchObject({ name: 'v', file: 'virtual.yaml', raw: { conns: '5' } });
  });
});

describe('an invalid scenario names the field path, what was expected and what was there', () => {
  const BASE = ['schema: notify.scenario/1', 'name: t'];
  const error = (name: string, lines: readonly string[]) => {
    const path = scenarioFile(name, [...BASE, ...lines]);
    return usage(() => loadScenario(path)).replace(`scenario ${path}: `, '');
  };

  it('a share that is not a percentage', () => {
    const phases = ['phases:', '  - {kind: steady, duration: 1s}', '  - {kind: burst, count: 5}', '  - {kind: storm, share: half}'];
    expect(error('share.yaml', phases)).toBe('phases[2].share: expected a percentage like 50%, got "half"');
    expect(error('share-num.yaml', ['phases: [{kind: slow, share: 1.5, duration: 1s}]'])).toBe('phases[0].share: expected a percentage like 50%, got 1.5');
  });

  it('a bad or missing duration, a bare number among them (its unit would be a guess)', () => {
    expect(error('ramp.yaml', ['ramp: soon'])).toBe('ramp: expected a duration like 10s, 500ms or 1m, got "soon"');
    expect(error('phase-duration.yaml', ['phases: [{kind: steady, duration: 10}]'])).toBe(
      'phases[0].duration: expected a duration like 10s, 500ms or 1m, got 10',
    );
    expect(error('no-duration.yaml', ['phases: [{kind: churn, rate: 5/s}]'])).toBe('phases[0].duration: missing, expected a duration like 10s, 500ms or 1m');
  });

  it('bad rates, counts, storms, signals and URLs', () => {
    expect(error('rate.yaml', ['rate: fast'])).toBe('rate: expected a rate like 10/s or 600/m, got "fast"');
    expect(error('conns.yaml', ['conns: 0'])).toBe('conns: expected a whole number >= 1, got 0');
    expect(error('workers.yaml', ['workers: many'])).toBe('workers: expected a whole number, got "many"');
    expect(error('storm.yaml', ['storm: ["50%"]'])).toBe('storm[0]: expected a storm like 50%@20s, got "50%"');
    expect(error('signal.yaml', ['server: {command: x, ready: "http://h/"}', 'phases: [{kind: server-restart, signal: SIGHUP, down: 1s}]'])).toBe(
      'phases[0].signal: expected one of SIGKILL, SIGTERM, SIGINT, got "SIGHUP"',
    );
    expect(error('ready.yaml', ['server: {command: x, ready: "localhost:8080"}'])).toBe('server.ready: expected an http:// URL, got "localhost:8080"');
    expect(error('ready-text.yaml', ['server: {command: x, ready: "not a url"}'])).toBe('server.ready: expected an http:// URL, got "not a url"');
    expect(error('broker-ready.yaml', ['broker: {command: x, ready: "tcp://127.0.0.1"}'])).toBe(
      'broker.ready: expected an http:// URL or tcp://host:port, got "tcp://127.0.0.1"',
    );
    expect(error('url.yaml', ['url: {a: 1}'])).toBe('url: expected a URL or a list of URLs');
  });

  it('wrong types say what they got', () => {
    expect(error('dashboard.yaml', ['dashboard: "no"'])).toBe('dashboard: expected true or false, got "no"');
    expect(error('thresholds.yaml', ['thresholds: lost==0'])).toBe('thresholds: expected a list, got "lost==0"');
    expect(error('phases.yaml', ['phases: {kind: steady}'])).toBe('phases: expected a list, got a mapping');
    expect(error('out.yaml', ['out: 5'])).toBe('out: expected a file path or {json, html, junit}, got 5');
    expect(error('out-key.yaml', ['out: {xml: a.xml}'])).toBe('out: unknown field xml');
  });

  it('an unknown phase kind lists the valid kinds', () => {
    expect(error('kind.yaml', ['phases: [{kind: steady, duration: 1s}, {kind: explode}]'])).toBe(
      'phases[1].kind: expected one of steady, burst, storm, churn, slow, server-restart, broker-restart, got "explode"',
    );
  });

  it('unknown fields are named, at the top and in a phase', () => {
    expect(error('field.yaml', ['conn: 5', 'rampup: 1s'])).toBe('unknown fields conn, rampup');
    expect(error('phase-field.yaml', ['phases: [{kind: steady, duration: 1s, share: 5%}]'])).toBe('phases[0]: unknown field share');
  });

  it('a restart phase needs the process the swarm starts', () => {
    expect(error('restart.yaml', ['phases: [{kind: steady, duration: 1s}, {kind: server-restart, down: 2s}]'])).toBe(
      'phases[1]: server-restart needs server: {command, ready}, the server the swarm starts',
    );
    expect(error('broker-restart.yaml', ['server: {command: x, ready: "http://h/"}', 'phases: [{kind: broker-restart, down: 2s}]'])).toBe(
      'phases[0]: broker-restart needs broker: {command, ready}, the broker the swarm starts',
    );
  });

  it('a wrong or missing schema string', () => {
    const path = scenarioFile('schema.yaml', ['schema: notify.scenario/2', 'name: t']);
    expect(usage(() => loadScenario(path))).toBe(`scenario ${path}: schema: expected "notify.scenario/1", got "notify.scenario/2"`);
    const missing = scenarioFile('no-schema.yaml', ['name: t']);
    expect(usage(() => loadScenario(missing))).toBe(`scenario ${missing}: schema: missing, expected "notify.scenario/1"`);
  });

  it('several issues in one message', () => {
    expect(error('several.yaml', ['ramp: x', 'conns: -1'])).toBe(
      'conns: expected a whole number >= 1, got -1; ramp: expected a duration like 10s, 500ms or 1m, got "x"',
    );
  });

  it('a YAML syntax error gives the file and the line', () => {
    const path = scenarioFile('syntax.yaml', ['schema: notify.scenario/1', 'name: t', 'phases: [{kind: steady, duration: 1s}', 'conns: 5']);
    expect(usage(() => loadScenario(path))).toMatch(new RegExp(`^scenario ${path}: invalid YAML: Flow sequence .* at line 4, column 1$`));
    const dup = scenarioFile('dup.yaml', ['schema: notify.scenario/1', 'name: t', 'conns: 5', 'conns: 6']);
    expect(usage(() => loadScenario(dup))).toMatch(new RegExp(`^scenario ${dup}: invalid YAML: .* at line 4, column 1$`));
  });

  it('a missing file names its path', () => {
    const path = join(dir, 'nope.yaml');
    expect(usage(() => loadScenario(path))).toBe(`--scenario ${path}: cannot read the file (no such file)`);
  });
});

describe('withOverrides', () => {
  const file: Scenario['raw'] = { conns: '2000', ramp: '10s', url: ['http://a:1', 'http://b:2'], threshold: ['p99<250ms', 'lost==0'], dashboard: false };

  it('a flag given on the command line wins; one not given keeps the file value', () => {
    expect(withOverrides(file, { conns: '50', ramp: undefined, out: 'r.json' })).toEqual({ ...file, conns: '50', out: 'r.json' });
    expect(withOverrides(file, { dashboard: true }).dashboard).toBe(true);
    expect(withOverrides(file, {})).toEqual(file);
  });

  it("a repeatable flag's list replaces the file's list", () => {
    const merged = withOverrides(file, { threshold: ['lost==0'], url: ['http://c:3'], storm: ['50%@1s'], targetVar: ['k=v'] });
    expect(merged).toEqual({ ...file, threshold: ['lost==0'], url: ['http://c:3'], storm: ['50%@1s'], targetVar: ['k=v'] });
  });

  it('leaves both inputs as they were', () => {
    const cli = { conns: '1' };
    withOverrides(file, cli);
    expect(file.conns).toBe('2000');
    expect(cli).toEqual({ conns: '1' });
  });
});
