/**
 * SSE heartbeat: watches the shared stream (no probes are published to it) until two heartbeats have come, the
 * window (--timeout) is over, or the path closes the stream, and judges the interval against the idle timeouts.
 */
import type { CheckContext, SseSession } from './context.js';
import { FIX } from './fixes.js';
import { judgeWatch } from './idle.js';
import type { Check, Outcome } from './outcome.js';
import type { SseRecord } from './sse-reader.js';

/** A comment line (`:hb`), or an event named like a keep-alive. */
const HEARTBEAT_EVENT = /^(ping|heartbeat|hb|keep-?alive)$/i;
const isHeartbeat = (r: SseRecord) => r.kind === 'comment' || (r.kind === 'event' && HEARTBEAT_EVENT.test(r.name) && r.probes.length === 0);

/**
 * A socket read that is a heartbeat: it carries no `data:` line (comments, or nchan's `event: ping` with no data,
 * which EventSource never dispatches), or only heartbeat records.
 */
function heartbeatReads(s: SseSession): number[] {
  const { pieces } = s.raw;
  const { records } = s.reader;
  return pieces
    .filter((p, i) => pieces.findIndex((q) => q.read === p.read) === i)
    .filter((p) => {
      const text = pieces
        .filter((q) => q.read === p.read)
        .map((q) => q.text)
        .join('');
      const mine = records.filter((r) => r.read === p.read);
      return text.trim() !== '' && (!/^data:/m.test(text) || (mine.length > 0 && mine.every(isHeartbeat)));
    })
    .map((p) => p.at);
}

async function sseHeartbeat(ctx: CheckContext): Promise<Outcome> {
  const s = await ctx.openStream();
  const { reader } = s;
  const start = s.head.at;
  const end = start + ctx.config.timeoutMs;
  // The opening bytes (a comment nchan sends at once, for one) are not a heartbeat: those that come later are.
  const beats = () => heartbeatReads(s).filter((at) => at - start > 50);
  await reader.waitUntil(() => beats().length >= 2, end - performance.now());
  const times = beats();
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
