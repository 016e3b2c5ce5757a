/**
 * Resume by Last-Event-ID: a subscriber that drops after probe 1 and reconnects with its id must get exactly the
 * probes published while it was away (2 and 3), once and in order, then live ones (4). Nothing replayed, everything
 * replayed, or a gap are each a failure, shown with what arrived.
 */
import type { CheckContext, SseSession } from './context.js';
import { FIX } from './fixes.js';
import { fail, ms, pass, skip, type Check, type Outcome } from './outcome.js';
import { requireOpen } from './checks-streaming.js';

const SETTLE_MS = 500;

async function firstStream(ctx: CheckContext, run: string): Promise<{ id?: string; outcome?: Outcome }> {
  const a = await ctx.sse();
  requireOpen(a, 'the first SSE stream');
  await a.reader.waitFor(() => true, SETTLE_MS);
  const o = await ctx.publish(run, 1);
  if (!o.ok) return { outcome: skip(`could not publish a probe (${o.cause}): pass --publish-key or --target-var for the profile's publish block`) };
  const r1 = await a.reader.waitFor((r) => r === a.reader.probe(run, 1), ctx.config.eventWaitMs);
  a.raw.close();
  if (!r1) return { outcome: skip(`probe 1 did not arrive on the first stream within ${ms(ctx.config.eventWaitMs)} (see sse-streaming)`) };
  if (r1.lastId === undefined || r1.lastId === '') {
    return { outcome: fail('events carry no id: line, so a reconnecting EventSource has no Last-Event-ID to send', { fix: FIX.eventIds }) };
  }
  return { id: r1.lastId };
}

function judge(seqs: number[], b: SseSession, id: string): Outcome {
  const evidence = [`reconnected with Last-Event-ID: ${id} (the id of probe 1)`, `probes 2 and 3 published while away, 4 after reconnecting`];
  evidence.push(`the resumed stream brought probes [${seqs.join(', ')}]`);
  const resets = b.reader.records.filter((r) => r.kind === 'event' && r.name === 'reset');
  if (resets.length) evidence.push(`reset event: ${resets[0]!.data}`);
  const values = { received: seqs.join(',') };
  const missed = [2, 3].filter((s) => !seqs.includes(s));
  const fix = FIX.resume;
  if (!seqs.includes(4)) return fail('the resumed stream did not go live: probe 4 did not arrive', { evidence, fix, values });
  if (seqs.includes(1))
    return fail('replayed from before the id: probe 1 came again (a replay of everything, or an ignored Last-Event-ID)', { evidence, fix, values });
  if (missed.length === 2) return fail('nothing was replayed: the probes published while away are lost (Last-Event-ID ignored?)', { evidence, fix, values });
  if (missed.length === 1) return fail(`a gap: probe ${missed[0]} published while away never arrived`, { evidence, fix, values });
  if (seqs.join(',') !== '2,3,4') return fail('replayed, but not exactly once and in order', { evidence, fix, values });
  return pass('replayed exactly the 2 probes missed, in order, then live', { evidence, values });
}

async function sseResume(ctx: CheckContext): Promise<Outcome> {
  const target = ctx.render('sse');
  if (target.resume === 'none') return skip('the target profile says this server cannot resume (subscribe.sse.resume: none)');
  const run = ctx.run('resume');
  const first = await firstStream(ctx, run);
  if (first.outcome) return first.outcome;
  for (const seq of [2, 3]) {
    const o = await ctx.publish(run, seq);
    if (!o.ok) return skip(`could not publish probe ${seq} (${o.cause})`);
  }
  const b = await ctx.sse({ lastEventId: first.id });
  requireOpen(b, 'the resumed SSE stream');
  await b.reader.waitFor(() => true, SETTLE_MS);
  await ctx.publish(run, 4);
  await b.reader.waitFor((r) => r === b.reader.probe(run, 4), ctx.config.eventWaitMs);
  b.raw.close();
  return judge(b.reader.probeSeqs(run), b, first.id!);
}

export const RESUME_CHECKS: Check[] = [{ name: 'sse-resume', title: 'resume by Last-Event-ID replays exactly what was missed', run: sseResume }];
