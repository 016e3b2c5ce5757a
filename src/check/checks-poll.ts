/**
 * Long-poll hold vs the idle timeouts: how long the server holds a poll with nothing to send, or what the path
 * answers instead (502/504 from a proxy that gave up first). For the notify dialect the first poll only fetches the
 * cursor; the second, with it, is the one held, for the server's default hold (no `timeout=`: that is what a client
 * that does not choose gets).
 */
import { Agent, fetch } from 'undici';
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { judgeInterval } from './idle.js';
import { fail, ms, warn, type Check, type Outcome } from './outcome.js';
import { fetchErrorText } from './tls.js';

interface Poll {
  url: string;
  status?: number;
  body?: string;
  heldMs: number;
  error?: string;
}

async function poll(dispatcher: Agent, url: URL, headers: Record<string, string>, timeoutMs: number): Promise<Poll> {
  const started = performance.now();
  try {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(timeoutMs), dispatcher });
    const body = await res.text();
    return { url: url.href, status: res.status, body, heldMs: performance.now() - started };
  } catch (err) {
    const e = err as Error;
    const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
    return { url: url.href, heldMs: performance.now() - started, error: timedOut ? 'timeout' : fetchErrorText(e) };
  }
}

function cursorOf(body: string | undefined): string | undefined {
  try {
    const c = (JSON.parse(body ?? '') as { cursor?: unknown }).cursor;
    return typeof c === 'string' ? c : undefined;
  } catch {
    return undefined;
  }
}

async function heldPoll(ctx: CheckContext): Promise<Poll> {
  const target = ctx.render('poll', undefined, ctx.quietUser());
  const url = new URL(target.url);
  const headers = target.headers ?? {};
  const window = ctx.config.timeoutMs;
  const dispatcher = new Agent({ connect: { rejectUnauthorized: !ctx.config.insecureTls } });
  ctx.onDispose(() => dispatcher.destroy());
  if (ctx.config.target.dialect !== 'notify') return poll(dispatcher, url, headers, window);
  let answer = await poll(dispatcher, url, headers, ctx.config.eventWaitMs);
  // The first answer only gives the cursor; one with notifications (the other checks' probes, when a token fixes the
  // user) is not a hold either: poll again from where it ends.
  for (let i = 0; i < MAX_POLLS; i++) {
    const cursor = cursorOf(answer.body);
    if (answer.status !== 200 || cursor === undefined || (i > 0 && !hasNotifications(answer.body))) return answer;
    const resume = target.resume ?? 'query:cursor';
    if (resume.startsWith('query:')) url.searchParams.set(resume.slice(6), cursor);
    else headers['Last-Event-ID'] = cursor;
    answer = await poll(dispatcher, url, headers, window);
  }
  return answer;
}

const MAX_POLLS = 5;

function hasNotifications(body: string | undefined): boolean {
  try {
    const n = (JSON.parse(body ?? '') as { notifications?: unknown[] }).notifications;
    return Array.isArray(n) && n.length > 0;
  } catch {
    return false;
  }
}

async function pollHold(ctx: CheckContext): Promise<Outcome> {
  const p = await heldPoll(ctx);
  const evidence = [`GET ${p.url}`];
  if (p.error === 'timeout') {
    evidence.push(`no answer within ${ms(p.heldMs)} (--timeout)`);
    const held = judgeInterval('long-poll held', p.heldMs, FIX.pollHold, true, evidence);
    if (held.status === 'fail') return held;
    return warn(
      `still held after ${ms(p.heldMs)}: a hold of 55 s or more is cut by the Heroku router, 60 s by nginx and AWS ALB defaults; run with --timeout 120s to measure it`,
      {
        evidence,
        fix: FIX.pollHold,
        values: { heldMs: null },
      },
    );
  }
  if (p.error !== undefined) return fail(`the poll failed: ${p.error}`, { evidence });
  evidence.push(`HTTP ${p.status} after ${ms(p.heldMs)}: ${JSON.stringify((p.body ?? '').slice(0, 120))}`);
  if (p.status === 502 || p.status === 504) {
    return fail(`the path answered HTTP ${p.status} after ${ms(p.heldMs)}: a proxy timeout is shorter than the server's hold`, { evidence, fix: FIX.pollHold });
  }
  if (p.status !== 200 && p.status !== 204 && p.status !== 304 && p.status !== 408) return fail(`the poll was answered HTTP ${p.status}`, { evidence });
  const verdict = judgeInterval('long-poll held', p.heldMs, FIX.pollHold, false, evidence);
  return { ...verdict, values: { heldMs: Math.round(p.heldMs) } };
}

export const POLL_CHECKS: Check[] = [{ name: 'poll-hold', title: 'long-poll hold under the idle timeouts', run: pollHold }];
