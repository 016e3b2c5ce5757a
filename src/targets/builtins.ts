/**
 * The built-in target profiles (`--target NAME`), kept as YAML text so that load.ts parses and validates them
 * exactly as it does a user's file: a built-in is also the example to copy when writing one.
 *
 * JSON templates are single-quoted in YAML: the `{"` they hold would otherwise open a flow mapping, and a `\n` in
 * them must reach the JSON text as backslash-n (an escape inside a JSON string), not as a newline.
 */
export const BUILTIN_TARGETS: ReadonlyMap<string, string> = new Map([
  [
    'notify',
    `# notify serve itself (the default target): SSE /events, WebSocket /ws and long-poll /poll, each with ?user= and a
# Bearer token (the JWT minted from --jwt-secret when serve runs --auth jwt), and POST /publish (202 on success).
# A server started with --publish-key wants the key: --target-var publishKey=KEY.
schema: notify.target/1
name: notify
dialect: notify
vars:
  publishKey: ""
subscribe:
  sse:
    url: "{base}/events?user={user}"
    headers: { Authorization: "Bearer {token}" }
    resume: last-event-id
  ws:
    url: "{base}/ws?user={user}"
    headers: { Authorization: "Bearer {token}" }
    resume: query:cursor
  poll:
    url: "{base}/poll?user={user}"
    headers: { Authorization: "Bearer {token}" }
    resume: query:cursor
payload: '{"type":"system","title":"swarm probe","body":"{pad}","data":{"probe":{probe}}}'
publish:
  http:
    method: POST
    url: "{base}/publish"
    headers: { X-Publish-Key: "{var.publishKey}" }
    user: '{"user":"{user}","notification":{payload}}'
    broadcast: '{"broadcast":true,"notification":{payload}}'
    # notify serve takes an array of publish requests in one POST.
    batch: array
    okStatus: [202]
`,
  ],
  [
    'nchan',
    `# nginx with the nchan module configured by docs/nchan.conf: /sub/both/<user> multiplexes the channels user-<user>
# and broadcast over SSE, WebSocket (ws+meta.nchan frames, which carry the message id) and long-poll; /sub/broadcast
# is broadcast only; POST /pub/user/<user> and /pub/broadcast publish, the body being the message. Every transport
# resumes from the last message id, sent back whole as Last-Event-ID.
schema: notify.target/1
name: nchan
subscribe:
  sse:
    url: "{base}/sub/both/{user}"
    broadcastUrl: "{base}/sub/broadcast"
    resume: last-event-id
  ws:
    url: "{base}/sub/both/{user}"
    broadcastUrl: "{base}/sub/broadcast"
    protocols: [ws+meta.nchan]
    frames: nchan-meta
    resume: last-event-id
  poll:
    url: "{base}/sub/both/{user}"
    broadcastUrl: "{base}/sub/broadcast"
    resume: last-event-id
payload: '{"id":"{id}","type":"system","title":"swarm probe","body":"{pad}","data":{"probe":{probe}},"createdAt":"{now}"}'
publish:
  http:
    userUrl: "{base}/pub/user/{user}"
    broadcastUrl: "{base}/pub/broadcast"
    headers: { Content-Type: application/json }
    # One nchan message per request: an array body would arrive as one message holding them all.
    batch: each
`,
  ],
  [
    'pushpin',
    `# Pushpin (docs/pushpin/pushpin.conf, routes) in front of the GRIP origin docs/pushpin/grip-origin.mjs, which holds
# GET /events?user=<user> open as an SSE stream on the channels user-<user> and broadcast. Publishing goes to
# Pushpin's HTTP publish API (port 5561 by default; elsewhere: --target-var publishUrl=URL) as http-stream items
# that carry whole SSE events. Pushpin keeps no history here, so a reconnecting subscriber cannot resume.
schema: notify.target/1
name: pushpin
vars:
  publishUrl: "http://127.0.0.1:5561/publish/"
subscribe:
  sse:
    url: "{base}/events?user={user}"
    events: [notification]
    resume: none
publish:
  http:
    url: "{var.publishUrl}"
    headers: { Content-Type: application/json }
    user: '{"items":[{"channel":"user-{user}","formats":{"http-stream":{"content":"event: notification\\ndata: {payload.json}\\n\\n"}}}]}'
    broadcast: '{"items":[{"channel":"broadcast","formats":{"http-stream":{"content":"event: notification\\ndata: {payload.json}\\n\\n"}}}]}'
`,
  ],
  [
    'socketio',
    `# A Socket.IO (v4) app, which must:
# - accept connections on path /socket.io with the handshake auth {user, token}, and join each socket to the room
#   user:<user> (checking the token if it wants to);
# - answer POST /publish with a JSON body {"user":"<user>","notification":{...}} by emitting the event notification,
#   with the notification as its one argument, to the room user:<user>; and {"broadcast":true,"notification":{...}}
#   by emitting it to every socket; any 2xx answer means accepted.
# Socket.IO keeps no history, so a reconnecting subscriber cannot resume.
schema: notify.target/1
name: socketio
subscribe:
  socketio:
    url: "{base}"
    path: /socket.io
    auth: { user: "{user}", token: "{token}" }
    events: [notification]
    resume: none
publish:
  http:
    method: POST
    url: "{base}/publish"
    headers: { Content-Type: application/json }
    user: '{"user":"{user}","notification":{payload}}'
    broadcast: '{"broadcast":true,"notification":{payload}}'
    batch: each
`,
  ],
  [
    'sse',
    `# Any SSE endpoint: --url is the stream itself, every subscriber receives the same messages (broadcast only), and
# a reconnect sends Last-Event-ID. Each probe is POSTed as the payload to the URL given by
# --target-var publishUrl=URL, which the server must turn into an event on that stream.
schema: notify.target/1
name: sse
streams: [broadcast]
subscribe:
  sse:
    url: "{base}"
    resume: last-event-id
publish:
  http:
    # No default: a publish URL cannot be guessed from the stream's URL.
    url: "{var.publishUrl}"
    headers: { Content-Type: application/json }
    broadcast: "{payload}"
`,
  ],
]);
