/** `notify serve`: parse flags, start the gateway, print where it listens, shut down cleanly on SIGINT/SIGTERM. */
import { Command } from 'commander';
import type { Io } from '../io.js';
import { resolveServeOptions, SERVE_DEFAULTS as D, type RawServeOptions } from '../server/config.js';
import { startGateway } from '../server/gateway.js';
import { createLogger } from '../util/log.js';
import { formatDuration } from '../util/parse.js';

const HTTP_MODES = { http1: 'HTTP/1.1', tls: 'HTTP/2 + HTTP/1.1 over TLS', h2c: 'HTTP/1.1 + h2c' } as const;

export function serveCommand(io: Io, done: (code: number) => void): Command {
  return new Command('serve')
    .description('Run the reference notification gateway (SSE, WebSocket, long-poll) with replay, read receipts and metrics.')
    .option('--host <host>', 'address to listen on', D.host)
    .option('--port <port>', 'port to listen on (0 picks a free one)', D.port)
    .option(
      '--broker <url>',
      'where history and fan-out live: memory (one process), redis://HOST:PORT[/DB] or nats://HOST:PORT (shared by several gateways)',
      D.broker,
    )
    .option('--auth <mode>', 'none (user from ?user=) or jwt (HS256 bearer token, sub = user)', D.auth)
    .option('--jwt-secret <secret>', 'HS256 secret for --auth jwt (or env NOTIFY_JWT_SECRET)')
    .option('--publish-key <key>', 'key required on POST /publish as X-Publish-Key (or env NOTIFY_PUBLISH_KEY)')
    .option('--heartbeat <duration>', 'SSE :hb comment and WebSocket ping interval', D.heartbeat)
    .option('--history <n>', 'events kept per stream for replay after reconnect', D.history)
    .option('--history-bytes <size>', 'bytes the history of all streams may hold together; past it the oldest events go first', D.historyBytes)
    .option('--batch <duration>', "send one connection's events within this window as one batch (0 = each at once)", D.batch)
    .option('--coalesce <duration>', "write one connection's frames within this window in one write, each still its own event (0 = at once)", D.coalesce)
    .option('--max-buffer <size>', 'bytes waiting on one connection before it is closed as a slow consumer', D.maxBuffer)
    .option('--max-buffer-total <size>', 'bytes all connections together may have waiting; past it the largest are cut first', D.maxBufferTotal)
    .option('--max-conns <n>', 'live subscriptions allowed at once; past it 503 + Retry-After (0 = no limit)', D.maxConns)
    .option('--transports <list>', 'enabled subscribe endpoints, comma-separated', D.transports)
    .option('--max-body <size>', 'largest accepted request body (413 past it)', D.maxBody)
    .option('--poll-timeout <duration>', 'default long-poll hold when the client gives no timeout', D.pollTimeout)
    .option('--retry <duration>', 'SSE retry: sent to clients (shutdown sends a jittered multiple of it)', D.retry)
    .option('--unread-limit <n>', 'unread notifications listed in init (unreadCount counts all)', D.unreadLimit)
    .option('--tls-cert <file>', 'PEM certificate (chain): serve HTTP/2 over TLS, HTTP/1.1 through ALPN (WebSocket stays on HTTP/1.1)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--h2c', 'also speak cleartext HTTP/2 by prior knowledge (behind a proxy); HTTP/1.1 and WebSocket on the same port')
    .option('--insecure', 'allow a non-loopback --host without --auth jwt and --publish-key')
    .option('--log-level <level>', 'error, warn, info or debug', D.logLevel)
    .addHelpText(
      'after',
      `
Examples:
  $ notify serve                                       # http://127.0.0.1:8080, in-memory broker
  $ notify serve --port 0 --batch 200ms --history 5000 # free port, 200ms batches, longer replay window
  $ notify serve --coalesce 2ms                         # high publish rates: one write per connection per 2ms
  $ NOTIFY_JWT_SECRET=... notify serve --auth jwt --publish-key "$KEY"
  $ curl -N 'http://127.0.0.1:8080/events?user=42'     # then: notify publish --user 42 --title Hi
  $ notify serve --port 8081 --broker redis://127.0.0.1:6379   # run several: they share history, reads, counts
  $ notify serve --tls-cert cert.pem --tls-key key.pem  # https://: SSE and long-poll over HTTP/2 streams
  $ curl -Nk --http2 'https://127.0.0.1:8080/events?user=42'
  $ notify serve --h2c                                 # cleartext h2 for a proxy: curl --http2-prior-knowledge

POST /publish answers 202 {ids, delivered}. delivered: with --broker memory, the live connections the events were
written to; with redis:// or nats://, the live subscriptions of each event's stream on every gateway sharing the
broker, each counted by its instance right after the events were stored (one that does not answer within 500ms is
not counted). Read marks (first readAt wins) and read receipts are shared by every gateway on the broker.

WebSocket over HTTP/2 (RFC 8441) is not offered: /ws is HTTP/1.1 only (with TLS, through ALPN http/1.1).`,
    )
    .action(async (raw: RawServeOptions) => {
      const config = resolveServeOptions(raw, io.env);
      const log = createLogger(io.stderr, config.logLevel);
      const gateway = await startGateway(config, log);
      io.stderr.write(
        `notify serve listening on ${gateway.url} (${HTTP_MODES[config.http]}, broker ${config.broker}, auth ${config.auth}, history ${config.history}/stream, ` +
          `heartbeat ${formatDuration(config.heartbeatMs)}, batch ${formatDuration(config.batchMs)}${config.coalesceMs > 0 ? `, coalesce ${formatDuration(config.coalesceMs)}` : ''})\n` +
          `  GET  ${gateway.url}/events?user=ID   SSE\n` +
          `  GET  ${gateway.url.replace(/^http/, 'ws')}/ws?user=ID       WebSocket\n` +
          `  GET  ${gateway.url}/poll?user=ID     long-poll\n` +
          `  POST ${gateway.url}/publish          {"user":"42","notification":{"type":"system","title":"Hi"}}\n` +
          `  GET  ${gateway.url}/metrics  /healthz  /readyz  /  (browser demo page)\n`,
      );
      await new Promise<void>((resolve) => {
        const off = io.onSignal((signal) => {
          off();
          log.info(`${signal}: draining ${gateway.hub.size} connections`);
          gateway.shutdown().then(resolve, resolve);
        });
      });
      log.info('stopped');
      done(0);
    });
}
