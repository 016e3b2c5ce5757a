/** `notify swarm`: parse flags, run the swarm, print progress and the summary, write the result, gate on thresholds. */
import { Command } from 'commander';
import { ExitCode, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { thresholdsPassed } from '../metrics/thresholds.js';
import { writeArtifacts } from '../report/artifacts.js';
import { appendStepSummary, resultMarkdown } from '../report/markdown.js';
import { createProgressView } from '../progress/view.js';
import { buildResult } from '../result/build.js';
import { renderSummary, summaryViewOf } from '../report/summary-table.js';
import { resolveSwarmOptions, shardConns, SWARM_DEFAULTS as D, type RawSwarmOptions } from '../swarm/config.js';
import { runSwarm } from '../swarm/run.js';
import { plannedMs } from '../swarm/phases/index.js';
import { loadScenario, withOverrides, type Scenario } from '../scenario/load.js';
import { VERSION } from '../version.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function swarmCommand(io: Io, done: (code: number) => void): Command {
  return new Command('swarm')
    .description('Open N subscribers, publish probes on a schedule, and audit delivery: latency, lost, duplicated, out-of-order, reconnects.')
    .option(
      '--url <url>',
      'server to subscribe to (repeatable: connections are spread over the list, and one whose server is lost reconnects to the next; env NOTIFY_URL); without it an embedded notify serve is started',
      collect,
    )
    .option('--publish-to <which>', 'first: probes go to the first --url (servers sharing a broker); each: to every --url (independent servers)', 'first')
    .option('--transport <t>', "sse, ws, poll, socketio or mix:sse=70,ws=20,poll=10 (default: the target profile's first, sse for notify)")
    .option(
      '--target <name|file>',
      'how to subscribe and publish: a built-in profile (notify, nchan, pushpin, socketio, sse) or a notify.target/1 YAML file',
      'notify',
    )
    .option('--target-var <NAME=VALUE>', 'fills {var.NAME} in the target profile (repeatable), e.g. publishUrl=http://127.0.0.1:5561/publish/', collect)
    .option('--conns <n>', 'subscriber connections', D.conns)
    .option('--users <n>', 'distinct users the connections map onto (default: one per connection)')
    .option('--user-prefix <p>', 'user ids are <prefix>1 ... <prefix>N', D.userPrefix)
    .option('--ramp <duration>', 'time over which the connections open', D.ramp)
    .option('--duration <duration>', 'publishing phase, after the ramp', D.duration)
    .option('--drain <duration>', 'wait after publishing before counting', D.drain)
    .option('--rate <rate>', 'broadcast probes per second (N/s or N/m)', D.rate)
    .option('--user-rate <rate>', 'per-user probes per second in total, spread over the users', D.userRate)
    .option('--storm <share@time>', 'abort that share of open connections at once, e.g. 50%@20s (repeatable; time from the run start)', collect)
    .option('--reconnect <policy>', "immediate, backoff (exponential, full jitter) or retry (the server's SSE retry:)", D.reconnect)
    .option('--backoff-base <duration>', 'first backoff step', D.backoffBase)
    .option('--backoff-cap <duration>', 'longest backoff', D.backoffCap)
    .option(
      '--threshold <expr>',
      "fail (exit 99) unless this holds, e.g. 'p99<250ms', 'lost==0', 'misrouted==0' (repeatable; one with no data to measure fails)",
      collect,
    )
    .option('--out <file>', 'write the result (notify.result/1 JSON) to this file, or - for stdout')
    .option('--html <file>', 'write a self-contained HTML report at the end of the run')
    .option('--junit <file>', 'write the thresholds as JUnit XML test cases at the end of the run')
    .option('--no-dashboard', 'plain status lines instead of the live view')
    .option('--workers <n>', 'worker processes (0 = as many as the connection count needs)', D.workers)
    .option('--local-address <range>', 'source addresses to spread connections over, e.g. 127.0.0.1-127.0.0.8')
    .option('--http2', 'SSE and long-poll subscribers as streams over shared HTTP/2 sessions (h2 over TLS, h2c for http://); WebSocket stays on HTTP/1.1')
    .option('--streams-per-conn <n>', `with --http2: most open streams on one session before another is opened (default ${D.streamsPerConn})`)
    .option('--insecure-tls', 'accept any certificate on https:// and wss:// (self-signed test servers): subscribers and publisher')
    .option('--publish-key <key>', 'X-Publish-Key for the server (or env NOTIFY_PUBLISH_KEY)')
    .option('--jwt-secret <secret>', 'mint an HS256 token per user for --auth jwt servers (or env NOTIFY_JWT_SECRET)')
    .option('--bailout <n>', 'stop the run after this many failed connection attempts (0 = never)', D.bailout)
    .option('--poll-timeout <duration>', 'long-poll hold asked of the server', D.pollTimeout)
    .option('--payload-bytes <n>', "fill each probe's payload to this many bytes (the profile's {pad}), e.g. 2000")
    .option('--run <id>', 'the run id every probe carries (default: a random one); the shards of a run share it')
    .option('--shard <I/N>', "run shard I of N: this process opens and audits its part of --conns (the run's total); see notify report --merge")
    .option('--start-at <time>', 'start the ramp at this ISO 8601 time (every shard of a run the same), e.g. 2026-12-03T10:00:00Z')
    .option('--publish <mode>', 'auto: shard 1 (or an unsharded run) publishes; yes: this shard does; none: another process does', 'auto')
    .option('--scenario <file>', 'a notify.scenario/1 YAML file: the whole test, phases included; flags given here override its fields')
    .addHelpText(
      'after',
      `
Examples:
  $ notify swarm                                           # embedded server, 100 SSE subscribers, 10 broadcasts/s for 30s
  $ notify swarm --url http://127.0.0.1:8080 --conns 5000 --transport mix:sse=70,ws=20,poll=10 --ramp 10s
  $ notify swarm --conns 500 --user-rate 200/s --storm 50%@15s --reconnect backoff --out result.json
  $ notify swarm --conns 300 --duration 20s --threshold 'p99<250ms' --threshold 'lost==0'   # exit 99 if crossed
  $ notify swarm --conns 1000 --out result.json --html report.html --junit junit.xml         # CI artifacts
  $ notify swarm --target nchan --url http://127.0.0.1:8080 --transport mix:sse=50,ws=25,poll=25 --threshold lost==0
  $ notify swarm --scenario scenarios/reconnect-storm.yaml --conns 200     # a scenario file, one field overridden
  $ notify swarm --target ./my-server.yaml --url http://127.0.0.1:3000 --target-var key=s3cret --threshold lost==0
  $ notify swarm --url https://127.0.0.1:8443 --http2 --insecure-tls --conns 2000 --transport mix:sse=70,poll=30
  $ notify swarm --shard 2/3 --run r42 --start-at 2026-12-03T10:00:00Z --url http://gw:8080 --conns 30000 --out shard-2.json

Latency = receive time - the probe's intended send time (a late publisher shows up in it).
On a terminal a live dashboard shows the run (q or Ctrl-C stops early; the result is still written); with
--no-dashboard, in CI, with TERM=dumb or when stderr is not a terminal: a plain status line every few seconds.
With GITHUB_STEP_SUMMARY set, a Markdown summary is appended to that file.
Exit codes: 0 ok, 1 runtime failure (server unreachable, or a run that measured nothing: no connection opened, no
probe accepted, a worker lost; the result is still written), 2 usage error (also: --conns that this machine or the
embedded server cannot hold), 99 thresholds crossed.`,
    )
    .action((raw: SwarmFlags, cmd: Command) => runCommand(raw, cmd, io, done));
}

type SwarmFlags = RawSwarmOptions & { html?: string; junit?: string; scenario?: string };

/**
 * The flags with a scenario file under them: what the command line gave (not commander's defaults) wins over the
 * file, and the file over the defaults.
 */
function withScenario(raw: SwarmFlags, cmd: Command): { flags: SwarmFlags; scenario?: Scenario } {
  if (raw.scenario === undefined) return { flags: raw };
  const scenario = loadScenario(raw.scenario);
  const given = Object.fromEntries(Object.entries(raw).filter(([key]) => key !== 'scenario' && cmd.getOptionValueSource(key) !== 'default'));
  const file = scenario.payloadBytes === undefined ? scenario.raw : { ...scenario.raw, payloadBytes: String(scenario.payloadBytes) };
  return { flags: withOverrides(file, given), scenario };
}

/** The action: resolve the flags, run with the progress view, print and write the result, set the exit code. */
async function runCommand(cliFlags: SwarmFlags, cmd: Command, io: Io, done: (code: number) => void): Promise<void> {
  const { flags: raw, scenario } = withScenario(cliFlags, cmd);
  const config = resolveSwarmOptions(raw, io.env);
  if (scenario) {
    config.scenario = { name: scenario.name, file: scenario.file, phases: scenario.phases, server: scenario.server, broker: scenario.broker };
    // Publishing lasts as long as the phases: that is the run's duration (in the header line and the result's config).
    if (scenario.phases.length > 0) config.durationMs = plannedMs(scenario.phases);
    if (scenario.phases.length > 0 && config.shard) {
      throw usageError(`--shard with scenario ${scenario.file}: its phases act on one swarm's connections; shards run --duration with --storm instead`);
    }
    if (scenario.server && raw.url === undefined) {
      throw usageError(
        `scenario ${scenario.file}: server: needs url: too, where that server listens (without one the swarm would start its own notify serve and leave the scenario's server unused)`,
      );
    }
  }
  let unsubscribe = () => {};
  const signalled = new Promise<string>((resolve) => {
    unsubscribe = io.onSignal((signal) => resolve(`${signal} received`));
  });
  const transports = Object.keys(config.mix).join('+');
  const part = config.shard
    ? ` shard ${config.shard.index}/${config.shard.count}${config.publishes ? ' (publishes)' : ''}: ${shardConns(config.conns, config.shard)} of`
    : ':';
  io.stderr.write(
    `notify swarm run ${config.run}${part} ${config.conns} connections, ramp ${config.rampMs / 1000}s, publishing ${config.durationMs / 1000}s\n`,
  );
  const view = await createProgressView(io, {
    dashboard: config.dashboard,
    title: `notify swarm ${config.run} · ${config.conns} ${transports} connections`,
    plan: {
      rampMs: config.rampMs,
      durationMs: config.durationMs,
      drainMs: config.drainMs,
      auditPending: config.publishes ? undefined : 'this shard does not publish; notify report --merge settles it',
    },
  });
  try {
    const outcome = await runSwarm(config, {
      stopSignal: Promise.race([signalled, view.stopRequested]),
      onNote: view.onNote,
      onSnapshot: view.onSnapshot,
    });
    await view.finish(outcome.summary.total.events);
    const result = buildResult(outcome, VERSION);
    io.stderr.write('\n' + renderSummary(summaryViewOf(result), io.color));
    await writeArtifacts(result, { out: config.out, html: raw.html, junit: raw.junit }, io);
    const summaryFile = await appendStepSummary(io.env, resultMarkdown(result));
    if (summaryFile) io.stderr.write(`job summary appended to ${summaryFile}\n`);
    // A run that measured nothing (or lost a worker) is a runtime failure before it is a threshold verdict.
    done(outcome.problems.length > 0 ? ExitCode.runtime : thresholdsPassed(outcome.thresholds) ? ExitCode.ok : ExitCode.thresholds);
  } finally {
    await view.finish();
    unsubscribe();
  }
}
