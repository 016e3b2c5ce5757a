/**
 * Idle timeouts of the common proxies and load balancers, and the verdict on a measured keep-alive interval (SSE
 * heartbeat, WebSocket ping, long-poll hold) against each of them.
 */
import { FIX } from './fixes.js';
import { fail, ms, pass, warn, type Outcome } from './outcome.js';

export interface IdleTimeout {
  name: string;
  seconds: number;
  fix: string;
}

/** Shortest first. */
export const IDLE_TIMEOUTS: readonly IdleTimeout[] = [
  { name: 'Heroku router', seconds: 55, fix: FIX.idle.heroku },
  { name: 'nginx proxy_read_timeout (default)', seconds: 60, fix: FIX.idle.nginx },
  { name: 'AWS ALB idle timeout (default)', seconds: 60, fix: FIX.idle.alb },
  { name: 'Cloudflare', seconds: 100, fix: FIX.idle.cloudflare },
];
const SHORTEST_S = IDLE_TIMEOUTS[0]!.seconds;

/** One line per idle timeout: under it or not. */
function against(intervalMs: number, atLeast: boolean): { lines: string[]; over: IdleTimeout[] } {
  const over = IDLE_TIMEOUTS.filter((t) => intervalMs >= t.seconds * 1000);
  const lines = IDLE_TIMEOUTS.map((t) => `${t.name} ${t.seconds} s: ${over.includes(t) ? `${atLeast ? 'at least ' : ''}over it, cut` : 'under it'}`);
  return { lines, over };
}

/** A measured interval (or, with `atLeast`, a lower bound of it) against every idle timeout; `noun`: `heartbeat every`. */
export function judgeInterval(noun: string, intervalMs: number, serverFix: readonly string[], atLeast = false, evidence: string[] = []): Outcome {
  const { lines, over } = against(intervalMs, atLeast);
  const values = { intervalMs: Math.round(intervalMs) };
  const measured = `${noun} ${atLeast ? 'at least ' : ''}${ms(intervalMs)}`;
  if (over.length === 0)
    return pass(`${measured}: under every common idle timeout (shortest: ${IDLE_TIMEOUTS[0]!.name}, ${SHORTEST_S} s)`, {
      evidence: [...evidence, ...lines],
      values,
    });
  return fail(`${measured}: over the idle timeout of ${over.map((t) => t.name).join(', ')}`, {
    evidence: [...evidence, ...lines],
    fix: [...serverFix, ...over.map((t) => t.fix)],
    values,
  });
}

/** What a keep-alive watch saw: beat times, the window, and the end of the connection if it ended. */
export interface Watch {
  noun: string;
  start: number;
  windowMs: number;
  beats: number[];
  /** When the connection ended during the window, and the last byte (or frame) before it. */
  ended?: { at: number; lastByteAt: number; error?: string };
  serverFix: readonly string[];
}

/** The timeout nearest to a silence the path cut, for the summary. */
function nearest(silenceMs: number): string {
  const near = IDLE_TIMEOUTS.filter((t) => Math.abs(t.seconds * 1000 - silenceMs) < 2500).map((t) => t.name);
  return near.length ? near.join(' or ') : `a proxy idle timeout of about ${Math.round(silenceMs / 1000)} s`;
}

export function judgeWatch(w: Watch): Outcome {
  const { beats, ended, noun } = w;
  const evidence = beats.slice(0, 4).map((b, i) => `${noun} #${i + 1} at ${ms(b - w.start)}`);
  if (beats.length >= 2) return judgeInterval(`${noun} every`, beats[1]! - beats[0]!, w.serverFix, false, evidence);
  if (ended) {
    const silence = ended.at - ended.lastByteAt;
    evidence.push(`connection closed at ${ms(ended.at - w.start)}${ended.error ? ` (${ended.error})` : ''}, ${ms(silence)} after the last byte`);
    return fail(`the path closed the connection after ${ms(silence)} of silence, before a second ${noun}: ${nearest(silence)}`, {
      evidence,
      fix: [...w.serverFix, FIX.idle.nginx, FIX.idle.alb],
      values: { silenceMs: Math.round(silence), intervalMs: null },
    });
  }
  const since = beats.length === 1 ? w.start + w.windowMs - beats[0]! : w.windowMs;
  if (since >= SHORTEST_S * 1000) return judgeInterval(`${noun} every`, since, w.serverFix, true, evidence);
  const what = beats.length === 1 ? `only one ${noun} within ${ms(w.windowMs)}` : `no ${noun} within ${ms(w.windowMs)}`;
  return warn(`${what}; the interval is over ${ms(since)} but may still be under ${SHORTEST_S} s: run with --timeout 120s to measure it`, {
    evidence: [...evidence, `watched for ${ms(w.windowMs)}`],
    fix: w.serverFix,
    values: { intervalMs: null },
  });
}
