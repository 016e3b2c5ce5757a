/** `notify check URL`: thin wiring; options in src/check/options.ts, the checks in src/check/. */
import { Command } from 'commander';
import { ExitCode } from '../errors.js';
import type { Io } from '../io.js';
import { CHECK_DEFAULTS, resolveCheckOptions, type RawCheckOptions } from '../check/options.js';
import { CHECK_NAMES } from '../check/registry.js';
import { renderCheckReport } from '../check/render.js';
import { runChecks } from '../check/runner.js';

const collect = (value: string, list: string[] = []) => [...list, value];

export function checkCommand(io: Io, done: (code: number) => void): Command {
  return new Command('check')
    .description('Check the path to a notification stream (server, proxies, CDN): buffering, compression, heartbeats, resume, WebSocket, auth, CORS.')
    .argument('<url>', 'base URL of the server, as for notify swarm --url (e.g. http://127.0.0.1:8080)')
    .option('--target <profile>', 'target profile: a built-in name (notify, nchan, pushpin, socketio, sse) or a YAML file (default: notify)')
    .option('--target-var <name=value>', "value of the profile's {var.NAME} (repeatable)", collect)
    .option('--user <id>', "the user whose stream is checked (default: the token's sub, else a fresh check-<hex>)")
    .option('--token <jwt>', "bearer token for the profile's {token} (a server with auth); also checks that the stream is refused without it")
    .option('--origin <origin>', 'browser origin to check CORS for, e.g. https://app.example.com')
    .option('--publish-key <key>', "publish key for the profile's publish block (--target-var publishKey=KEY)")
    .option('--only <name...>', `run only these checks: ${CHECK_NAMES.join(', ')}`)
    .option('--timeout <duration>', 'longest a measuring check (heartbeat, ping, long-poll hold) watches', CHECK_DEFAULTS.timeout)
    .option('--insecure-tls', 'accept any certificate on https:// and wss:// (self-signed test servers), as for notify swarm')
    .option('--json', 'machine output (JSON, schema notify.check/1) on stdout')
    .addHelpText(
      'after',
      `
Examples:
  $ notify check http://127.0.0.1:8080                       # notify serve, directly
  $ notify check https://push.example.com --token "$JWT" --origin https://app.example.com
  $ notify check https://127.0.0.1:8080 --insecure-tls         # notify serve --tls-cert with a self-signed certificate
  $ notify check http://127.0.0.1:8081 --target nchan        # nginx + nchan through its profile
  $ notify check http://127.0.0.1:8080 --only sse-streaming sse-heartbeat --timeout 70s
  $ notify check http://127.0.0.1:8080 --json | jq '.checks[] | select(.status == "fail") | .fix'

Each check prints PASS, WARN, FAIL or SKIP with what it saw (bytes, times, headers) and, unless it passed, the
setting that fixes it (nginx, AWS ALB, Cloudflare, Heroku, the server).
Exit codes: 0 nothing failed (warnings allowed), 1 a check failed, 2 usage error.`,
    )
    .action(async (url: string, raw: RawCheckOptions) => {
      const config = resolveCheckOptions(url, raw, CHECK_NAMES);
      const report = await runChecks(config);
      if (config.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else io.stdout.write(renderCheckReport(report, io.color));
      done(report.counts.fail > 0 ? ExitCode.runtime : ExitCode.ok);
    });
}
