/** `notify check`'s flags, validated into a CheckConfig (exit 2 naming the flag and the value on a bad one). */
import { randomBytes } from 'node:crypto';
import { usageError } from '../errors.js';
import { USER_ID, USER_ID_RULE } from '../protocol/streams.js';
import { loadTarget, type LoadedTarget } from '../targets/load.js';
import { parseDuration } from '../util/parse.js';

export interface RawCheckOptions {
  target?: string;
  targetVar?: string[];
  user?: string;
  token?: string;
  origin?: string;
  publishKey?: string;
  json?: boolean;
  timeout?: string;
  only?: string[];
  insecureTls?: boolean;
}

export interface CheckConfig {
  /** The URL as given, and `{base}`: the same without a trailing slash. */
  url: string;
  base: string;
  target: LoadedTarget;
  /** The user whose stream is checked (its own probes go there). */
  user: string;
  token?: string;
  origin?: string;
  /** `--timeout`: the longest a measuring check (heartbeat, ping, long-poll hold) watches, ms. */
  timeoutMs: number;
  /** The longest a check waits for one expected event or answer, ms. */
  eventWaitMs: number;
  json: boolean;
  /** `--only`: registry names; undefined = every check. */
  only?: string[];
  /** `--insecure-tls`: accept any certificate on https:// and wss:// (self-signed test servers). */
  insecureTls: boolean;
}

export const CHECK_DEFAULTS = { timeout: '35s' } as const;
const MIN_TIMEOUT_MS = 2000;
const EVENT_WAIT_MS = 5000;

function parseUrl(url: string | undefined): URL {
  if (url === undefined) throw usageError('notify check needs a URL, e.g. notify check http://127.0.0.1:8080');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usageError(`URL must be an absolute http:// or https:// URL (got "${url}")`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError(`URL must start with http:// or https:// (got "${url}")`);
  return u;
}

function parseOrigin(origin: string | undefined): string | undefined {
  if (origin === undefined) return undefined;
  let u: URL | undefined;
  try {
    u = new URL(origin);
  } catch {}
  if (!u || !/^https?:$/.test(u.protocol) || (u.pathname !== '/' && u.pathname !== '') || u.search || origin.endsWith('/')) {
    throw usageError(`--origin must be an origin like https://app.example.com, without a path (got "${origin}")`);
  }
  return origin;
}

/** The `sub` of a JWT, read without verifying it (the server verifies; this only names the stream). */
export function tokenSubject(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof payload.sub === 'string' ? payload.sub : undefined;
  } catch {
    return undefined;
  }
}

export function resolveCheckOptions(url: string | undefined, raw: RawCheckOptions, checkNames: readonly string[]): CheckConfig {
  parseUrl(url);
  const timeoutMs = parseDuration('--timeout', raw.timeout ?? CHECK_DEFAULTS.timeout);
  if (timeoutMs < MIN_TIMEOUT_MS) throw usageError(`--timeout must be >= ${MIN_TIMEOUT_MS / 1000}s (got ${raw.timeout})`);
  if (raw.user !== undefined && !USER_ID.test(raw.user)) throw usageError(`--user must be ${USER_ID_RULE} (got "${raw.user}")`);
  if (raw.token !== undefined && raw.token.trim() === '') throw usageError('--token must not be empty');
  for (const name of raw.only ?? []) {
    if (!checkNames.includes(name)) throw usageError(`--only: unknown check "${name}"; the checks are ${checkNames.join(', ')}`);
  }
  const vars = [...(raw.publishKey === undefined ? [] : [`publishKey=${raw.publishKey}`]), ...(raw.targetVar ?? [])];
  const user = raw.user ?? (raw.token ? tokenSubject(raw.token) : undefined) ?? `check-${randomBytes(4).toString('hex')}`;
  return {
    url,
    base: url!.replace(/\/+$/, ''),
    target: loadTarget(raw.target, vars),
    user,
    token: raw.token,
    origin: parseOrigin(raw.origin),
    timeoutMs,
    eventWaitMs: Math.min(EVENT_WAIT_MS, timeoutMs),
    json: Boolean(raw.json),
    only: raw.only,
    insecureTls: Boolean(raw.insecureTls),
  } as CheckConfig;
}
