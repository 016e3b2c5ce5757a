/** `notify serve` options as resolved and validated: the one place flag values become a ServeConfig. */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { usageError } from '../errors.js';
import { isServeTransport, SERVE_TRANSPORTS, type ServeTransport } from '../protocol/transports.js';
import { parseDuration, parseInteger, parseSize } from '../util/parse.js';
import { parseLogLevel, type LogLevel } from '../util/log.js';

export interface ServeConfig {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** `memory`, `redis://...` or `nats://...`. */
  broker: string;
  auth: 'none' | 'jwt';
  jwtSecret?: string;
  publishKey?: string;
  /** SSE `:hb` comment and WS ping interval, ms. */
  heartbeatMs: number;
  /** Events kept per stream for replay. */
  history: number;
  /** Bytes the history of all streams may hold together; past it the oldest events are dropped first. */
  historyBytes: number;
  /** Window in ms within which one connection's events go out as one batch; 0 sends each at once. */
  batchMs: number;
  /**
   * Window in ms within which a connection's frames leave in one write (each still its own event on the wire); 0
   * writes each fan-out at once.
   */
  coalesceMs: number;
  /** Bytes a connection may have waiting in its send buffer before it is closed as a slow consumer. */
  maxBuffer: number;
  /** Bytes all connections together may have waiting; past it the largest buffers are cut first (slow consumers). */
  maxBufferTotal: number;
  /** Live subscriptions allowed at once (0 = no limit); past it, 503 with Retry-After. */
  maxConns: number;
  transports: ServeTransport[];
  insecure: boolean;
  /** Largest accepted request body, bytes (413 past it). */
  maxBody: number;
  /** Longest a long-poll is held, ms (a client's `timeout` is capped to it). */
  pollTimeoutMaxMs: number;
  /** Default long-poll hold, ms. */
  pollTimeoutMs: number;
  /** SSE `retry:` sent at connect, ms. */
  retryMs: number;
  /** Unread notifications listed in `init` (the count covers all of them). */
  unreadLimit: number;
  /** How long shutdown waits for clients to leave before closing what remains, ms. */
  shutdownGraceMs: number;
  /** Request headers, and a whole request with its body, must arrive within these (408 after), ms. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  logLevel: LogLevel;
  /**
   * How the port speaks HTTP: `http1` (plain HTTP/1.1), `tls` (HTTP/2 over TLS with HTTP/1.1 through ALPN, from
   * --tls-cert/--tls-key) or `h2c` (cleartext HTTP/2 by prior knowledge, HTTP/1.1 on the same port).
   */
  http: 'http1' | 'tls' | 'h2c';
  /** PEM certificate chain and key, read at start (set with `http: 'tls'`). */
  tls?: { cert: Buffer; key: Buffer };
}

export const SERVE_DEFAULTS = {
  host: '127.0.0.1',
  port: '8080',
  broker: 'memory',
  auth: 'none',
  heartbeat: '15s',
  history: '1000',
  historyBytes: '256mb',
  batch: '0ms',
  coalesce: '0ms',
  maxBuffer: '1mb',
  maxBufferTotal: '256mb',
  maxConns: '0',
  transports: 'sse,ws,poll',
  maxBody: '64kb',
  pollTimeout: '25s',
  retry: '3s',
  unreadLimit: '50',
  logLevel: 'info',
} as const;

/** Raw commander values (strings) plus the environment. */
export interface RawServeOptions {
  host?: string;
  port?: string;
  broker?: string;
  auth?: string;
  jwtSecret?: string;
  publishKey?: string;
  heartbeat?: string;
  history?: string;
  historyBytes?: string;
  batch?: string;
  coalesce?: string;
  maxBuffer?: string;
  maxBufferTotal?: string;
  maxConns?: string;
  transports?: string;
  insecure?: boolean;
  maxBody?: string;
  pollTimeout?: string;
  retry?: string;
  unreadLimit?: string;
  logLevel?: string;
  tlsCert?: string;
  tlsKey?: string;
  h2c?: boolean;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function resolveServeOptions(raw: RawServeOptions, env: Record<string, string | undefined> = {}): ServeConfig {
  const d = SERVE_DEFAULTS;
  const auth = raw.auth ?? d.auth;
  if (auth !== 'none' && auth !== 'jwt') throw usageError(`--auth must be one of none, jwt (got "${auth}")`);
  const jwtSecret = raw.jwtSecret ?? env.NOTIFY_JWT_SECRET;
  if (auth === 'jwt' && !jwtSecret) {
    throw usageError('--auth jwt needs a secret: give --jwt-secret or set NOTIFY_JWT_SECRET');
  }
  if (auth === 'jwt' && jwtSecret!.length < 16) {
    throw usageError(`--jwt-secret must be at least 16 characters for HS256 (got ${jwtSecret!.length})`);
  }
  const transports = (raw.transports ?? d.transports)
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of transports) {
    if (!isServeTransport(t)) {
      throw usageError(`--transports must be a list of ${SERVE_TRANSPORTS.join(', ')} (got "${t}")`);
    }
  }
  if (transports.length === 0) throw usageError('--transports must name at least one of sse, ws, poll (got "")');
  const heartbeatMs = parseDuration('--heartbeat', raw.heartbeat ?? d.heartbeat);
  if (heartbeatMs < 100) throw usageError(`--heartbeat must be >= 100ms (got ${heartbeatMs}ms)`);
  const pollTimeoutMs = parseDuration('--poll-timeout', raw.pollTimeout ?? d.pollTimeout, 's');
  const config: ServeConfig = {
    host: raw.host ?? d.host,
    port: parseInteger('--port', raw.port ?? d.port, 0, 65535),
    broker: raw.broker ?? d.broker,
    auth,
    jwtSecret,
    publishKey: raw.publishKey ?? env.NOTIFY_PUBLISH_KEY,
    heartbeatMs,
    history: parseInteger('--history', raw.history ?? d.history, 1, 10_000_000),
    historyBytes: parseSize('--history-bytes', raw.historyBytes ?? d.historyBytes),
    batchMs: parseDuration('--batch', raw.batch ?? d.batch),
    coalesceMs: parseCoalesce(raw.coalesce ?? d.coalesce),
    maxBuffer: parseSize('--max-buffer', raw.maxBuffer ?? d.maxBuffer),
    maxBufferTotal: parseSize('--max-buffer-total', raw.maxBufferTotal ?? d.maxBufferTotal),
    maxConns: parseInteger('--max-conns', raw.maxConns ?? d.maxConns, 0),
    transports: transports as ServeTransport[],
    insecure: Boolean(raw.insecure),
    maxBody: parseSize('--max-body', raw.maxBody ?? d.maxBody),
    pollTimeoutMs,
    pollTimeoutMaxMs: Math.max(pollTimeoutMs, 120_000),
    retryMs: parseDuration('--retry', raw.retry ?? d.retry),
    unreadLimit: parseInteger('--unread-limit', raw.unreadLimit ?? d.unreadLimit, 0, 10_000),
    shutdownGraceMs: 3000,
    headersTimeoutMs: 15_000,
    requestTimeoutMs: 30_000,
    logLevel: parseLogLevel('--log-level', raw.logLevel ?? d.logLevel),
    ...httpMode(raw),
  };
  if (config.maxBuffer < 1024) throw usageError(`--max-buffer must be >= 1kb (got ${config.maxBuffer} bytes)`);
  if (config.maxBufferTotal < config.maxBuffer) {
    throw usageError(`--max-buffer-total must be >= --max-buffer (got ${config.maxBufferTotal} < ${config.maxBuffer} bytes)`);
  }
  if (config.historyBytes < 64 * 1024) throw usageError(`--history-bytes must be >= 64kb (got ${config.historyBytes} bytes)`);
  if (!isLoopback(config.host) && !config.insecure) {
    const missing = [config.auth === 'none' ? '--auth jwt' : '', config.publishKey ? '' : '--publish-key'].filter(Boolean);
    if (missing.length) {
      throw usageError(
        `refusing to listen on ${config.host} (not loopback) without ${missing.join(' and ')}`,
        'anyone who can reach the port could read every stream or publish; add the flags, or --insecure if you mean it',
      );
    }
  }
  return config;
}

/** --tls-cert, --tls-key and --h2c, checked together; the files are read and parsed here so a bad one is exit 2. */
function httpMode(raw: RawServeOptions): Pick<ServeConfig, 'http' | 'tls'> {
  const { tlsCert, tlsKey } = raw;
  if (tlsCert === undefined && tlsKey === undefined) return { http: raw.h2c ? 'h2c' : 'http1' };
  if (raw.h2c) throw usageError('--h2c is cleartext HTTP/2: leave out --tls-cert/--tls-key (with them the port speaks HTTP/2 over TLS anyway)');
  if (tlsCert === undefined || tlsKey === undefined) {
    throw usageError(`--tls-cert and --tls-key go together (got only ${tlsCert === undefined ? '--tls-key' : '--tls-cert'})`);
  }
  const tls = { cert: readPem('--tls-cert', tlsCert), key: readPem('--tls-key', tlsKey) };
  const hint = 'give a PEM certificate (chain) and its unencrypted private key, e.g. from `openssl req -x509 -newkey rsa:2048 -nodes`';
  // One part at a time, so that the message names the flag whose file OpenSSL could not use.
  const check = (parts: { cert?: Buffer; key?: Buffer }, what: string) => {
    try {
      createSecureContext(parts);
    } catch (err) {
      throw usageError(`${what} (${(err as Error).message})`, hint);
    }
  };
  check({ cert: tls.cert }, `--tls-cert ${tlsCert} is not a PEM certificate`);
  check({ key: tls.key }, `--tls-key ${tlsKey} is not a PEM private key (or it is encrypted)`);
  check(tls, `--tls-key ${tlsKey} is not the key of --tls-cert ${tlsCert}`);
  return { http: 'tls', tls };
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw usageError(`${flag} ${file}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** Longest `--coalesce`: it holds every connection's frames that long, heartbeats and replies included. */
const MAX_COALESCE_MS = 1000;

function parseCoalesce(value: string): number {
  const ms = parseDuration('--coalesce', value);
  if (ms > MAX_COALESCE_MS) throw usageError(`--coalesce must be at most 1s: it delays every frame that long (got "${value}")`, 'a few ms is enough: 2ms');
  return ms;
}
