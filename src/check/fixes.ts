/**
 * The settings that fix each problem, per product on the path. One list per problem, shared by every check that can
 * find it, so a fix reads the same wherever it is printed.
 */
export const FIX = {
  buffering: [
    'nginx: proxy_buffering off; in the stream location (or send X-Accel-Buffering: no from the server, and drop proxy_ignore_headers X-Accel-Buffering)',
    'Cloudflare: responses are streamed unless a rule caches them: no Cache Rule / "Cache Everything" on the stream path, and send Cache-Control: no-cache',
    'AWS ALB / Heroku router: they do not buffer; look for another proxy on the path (a CDN, an ingress, a sidecar)',
  ],
  compression: [
    'nginx: leave text/event-stream out of gzip_types (or gzip off; in the stream location)',
    'Cloudflare: a Compression Rule that disables compression for the stream path (and send Cache-Control: no-transform)',
    'the server: do not compress text/event-stream (compression middleware flushes only when its buffer fills)',
  ],
  chunked: [
    'nginx: chunked_transfer_encoding on; (the default) with proxy_http_version 1.1; in the stream location',
    'the stream is delimited by the connection closing: keep-alive is lost and a proxy further down may hold it until it ends',
    'nchan (nginx is the origin): its EventSource answers are not chunked whatever the setting; harmless for browsers, so read this as a note',
  ],
  contentType: [
    'the server: answer the stream with Content-Type: text/event-stream',
    'nginx: no default_type / add_header overriding the upstream Content-Type in the stream location',
  ],
  cacheControl: [
    'the server: send Cache-Control: no-cache (notify serve sends no-cache, no-transform)',
    'Cloudflare: no Cache Rule that caches the stream path',
  ],
  retry: ['the server: send a retry: line (milliseconds) when the stream opens, so that clients come back at the pace it chooses (notify serve --retry 3s)'],
  heartbeatServer: ['the server: send a comment line (:hb) more often than the shortest idle timeout on the path (notify serve --heartbeat 15s)'],
  idle: {
    nginx: 'nginx: proxy_read_timeout longer than the heartbeat interval (default 60s; e.g. proxy_read_timeout 3600s; in the stream location)',
    alb: 'AWS ALB: the load balancer attribute idle_timeout.timeout_seconds (default 60) longer than the heartbeat',
    cloudflare: 'Cloudflare: 100 s without a byte ends the request (fixed below Enterprise): a heartbeat under 100 s is the fix',
    heroku: 'Heroku router: 55 s without a byte ends the request (fixed): a heartbeat under 55 s is the fix',
  },
  resume: [
    'the server: keep a history and replay every event after the Last-Event-ID it is sent, once, before live events (notify serve --history 1000)',
    'nginx: pass the Last-Event-ID request header through (no proxy_pass_request_headers off, no proxy_set_header Last-Event-ID "")',
    'nchan: nchan_message_buffer_length and nchan_message_timeout long enough for a reconnect',
  ],
  eventIds: ['the server: give every event an id: line (its position in the stream), or a reconnecting EventSource has nothing to resume from'],
  wsPingServer: [
    'the server: send a WebSocket ping (or any frame) more often than the shortest idle timeout on the path (notify serve --heartbeat 15s pings too; nchan: nchan_websocket_ping_interval)',
  ],
  upgrade: [
    'nginx: proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade"; (Upgrade and Connection are hop-by-hop: nginx drops them unless told)',
    'AWS ALB: WebSocket works on HTTP and HTTPS listeners; the target group protocol version must be HTTP1',
    'Cloudflare: Network > WebSockets on',
  ],
  pollHold: [
    'the server: hold a long-poll for less than the shortest idle timeout on the path (notify serve --poll-timeout 25s)',
    'nginx: proxy_read_timeout longer than the hold',
  ],
  http2: [
    'nginx: listen 443 ssl http2; (nginx >= 1.25.1: http2 on;)',
    'AWS ALB: an HTTPS listener negotiates HTTP/2 with browsers by default',
    'Cloudflare: HTTP/2 is on by default for proxied hostnames (Speed > Optimization > Protocol)',
    'browsers open at most 6 HTTP/1.1 connections per origin: a 7th tab with an EventSource stalls',
  ],
  auth: ['the server: refuse a stream without valid credentials with 401 (no token) or 403 (not yours) before sending the stream head'],
  queryToken: [
    'send the token in the Authorization header (fetch-based EventSource polyfills can), or as a cookie',
    'nginx: log $uri instead of $request / $request_uri in log_format, or a map that strips token= from the logged URI',
    'AWS ALB / Cloudflare / Heroku: their access logs record the whole request line, query string included',
  ],
  cors: [
    'the server: answer the stream and its preflight (OPTIONS) with Access-Control-Allow-Origin: <origin> (or *), and list Authorization, Last-Event-ID in Access-Control-Allow-Headers',
    'nginx: add_header Access-Control-Allow-Origin $http_origin always; if the upstream does not, and answer OPTIONS',
  ],
} as const;
