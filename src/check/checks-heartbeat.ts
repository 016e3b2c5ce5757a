/**
 * SSE heartbeat: watches the shared stream (no probes are published to it) until two heartbeats have come, the
 * window (--timeout) is over, or the path closes the stream, and judges the interval against the idle timeouts.
 */
import type { CheckContext } from './context.js';
import { FIX } from './fixes.js';
import { judgeWatch } from './idle.js';
import type { Check, Outcome } from './outcome.js';
import type { SseRecord } from './sse-reader.js';

/** A comment line (`:hb`), or an event named like a keep-alive (nchan's `ping`). */
const HEARTBEAT_EVENT = /^(ping|heartbeat|hb|keep-?alive)$/i;
export const isHeartbeat = (r: SseRecord) => r.kind === 'comment' || (r.kind === 'event' && HEARTBEAT_EVENT.test(r.name) && r.probes.length === 0);

async function sseHeartbeat(ctx: CheckContext): Promise<Outcome> {
  const s = await ctx.openStream();
  const { reader } = s;
  const start = s.head.at;
  const end = start + ctx.config.timeoutMs;
  const beats = () => reader.records.filter(isHeartbeat);
  // The opening bytes (a comment nchan sends at once, for one) are not a heartbeat: those that come later are.
  const first = await reader.waitFor((r) => isHeartbeat(r) && r.at - start > 50, end - performance.now());
  if (first) await reader.waitFor((r) => isHeartbeat(r) && r.at > first.at, end - performance.now());
  const times = beats()
    .filter((r) => r.at - start > 50)
    .map((r) => r.at);
  const ended = reader.ended && times.length < 2 ? await s.raw.ended : undefined;
  const lastByteAt = s.raw.pieces.at(-1)?.at ?? start;
  return judgeWatch({
    noun: 'heartbeat',
    start,
    windowMs: ctx.config.timeoutMs,
    beats: times,
    ended: ended && { at: ended.at, lastByteAt, error: ended.error },
    serverFix: FIX.heartbeatServer,
  });
}

export const HEARTBEAT_CHECKS: Check[] = [{ name: 'sse-heartbeat', title: 'SSE heartbeat under the idle timeouts', run: sseHeartbeat }];
