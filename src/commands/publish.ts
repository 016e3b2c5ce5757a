/** `notify publish`: thin wiring; options in src/publish/config.ts, the run in src/publish/run.ts. */
import { Command } from 'commander';
import type { Io } from '../io.js';
import { createPublishClient } from '../publish/http-client.js';
import { PUBLISH_DEFAULTS, resolvePublishOptions, type RawPublishOptions } from '../publish/config.js';
import { publishOnce, publishSchedule } from '../publish/run.js';
import { NOTIFICATION_TYPES } from '../protocol/notification.js';

export function publishCommand(io: Io, done: (code: number) => void): Command {
  const D = PUBLISH_DEFAULTS;
  return new Command('publish')
    .description('Publish notifications to notify serve (POST /publish): one, or --count N on a --rate schedule.')
    .option('--url <url>', `gateway base URL (or env NOTIFY_URL) (default: "${D.url}")`)
    .option('--user <id...>', 'user(s) to notify; several users make one request with one event each')
    .option('--broadcast', 'publish on the broadcast stream (every subscriber)')
    .option('--type <type>', `notification type: ${NOTIFICATION_TYPES.join(', ')}`, D.type)
    .option('--title <title>', 'title (default: "notification N")')
    .option('--body <body>', 'body text')
    .option('--data <json>', 'free-form JSON object put in notification.data')
    .option('--count <n>', 'publish N notifications and print a summary')
    .option('--rate <rate>', 'send on a fixed schedule, e.g. 200/s or 600/m (without --count: until Ctrl-C)')
    .option('--publish-key <key>', 'sent as X-Publish-Key (or env NOTIFY_PUBLISH_KEY)')
    .option('--json', 'machine output (JSON) on stdout')
    .option('--max-in-flight <n>', 'requests awaiting an answer at most (--count/--rate)', D.maxInFlight)
    .option('--timeout <duration>', 'connect and response timeout per request', D.timeout)
    .addHelpText(
      'after',
      `
Examples:
  $ notify publish --user 42 --title 'New comment' --body 'Ann replied'
  $ notify publish --user 42 43 44 --type mention --data '{"postId": 7}'
  $ notify publish --broadcast --type alert --title 'Maintenance at 22:00' --json | jq -r '.ids[0]'
  $ notify publish --user 42 --count 1000 --rate 200/s     # fixed schedule, summary with 202 latency p50/p99
  $ NOTIFY_URL=http://gw:8080 NOTIFY_PUBLISH_KEY=... notify publish --broadcast --rate 50/s   # until Ctrl-C

Output: ids and live deliveries on stderr; with --json, {"ids", "delivered"} (or the --count summary) on stdout.
Exit codes: 0 all accepted, 1 server unreachable or a publish failed, 2 bad flag.`,
    )
    .action(async (raw: RawPublishOptions) => {
      const config = resolvePublishOptions(raw, io.env);
      const client = createPublishClient({
        url: config.url,
        publishKey: config.publishKey,
        timeoutMs: config.timeoutMs,
        connections: config.mode === 'once' ? 1 : config.maxInFlight,
      });
      try {
        done(config.mode === 'once' ? await publishOnce(client, config, io) : await publishSchedule(client, config, io));
      } finally {
        await client.destroy().catch(() => {});
      }
    });
}
