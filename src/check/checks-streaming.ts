/**
 * Streaming, not buffered: two probes published about a second apart must each arrive on their own socket read,
 * the first before the second is even sent. A buffering proxy holds both (or all) until its buffer fills.
 */
import type { CheckContext, SseSession } from './context.js';
import { FIX } from './fixes.js';
import { fail, ms, pass, skip, Skip, type Check, type Outcome } from './outcome.js';
import type { SseRecord } from './sse-reader.js';

const SPACING_MS = 1000;
/** How long the stream may stay quiet after its head before the first probe goes (its opening bytes arrive first). */
const SETTLE_MS = 500;

export function requireOpen(s: SseSession, what = 'the SSE stream'): asserts s is SseSession & { head: NonNullable<SseSession['head']> } {
  if (!s.head) throw new Skip(`${what} did not open (${s.error})`);
  if (s.head.status !== 200) throw new Skip(`${what} answered HTTP ${s.head.status}; see sse-headers`);
}

const sleep = (msTotal: number) => new Promise((r) => setTimeout(r, Math.max(0, msTotal)));

function arrival(r: SseRecord | undefined, sentAt: number, s: SseSession): string {
  if (!r) return 'did not arrive';
  const piece = s.raw.pieces.find((p) => p.read === r.read);
  return `arrived ${ms(r.at - sentAt)} after publishing, in socket read #${r.read} (${piece?.wireBytes ?? '?'} bytes)`;
}

async function sseStreaming(ctx: CheckContext): Promise<Outcome> {
  const run = ctx.run('streaming');
  const s = await ctx.sse();
  if (!s.head && /no response head/.test(s.error ?? '')) {
    return fail(`not even the head of the answer arrived within ${ms(ctx.config.eventWaitMs)}: the stream is buffered on the path`, {
      evidence: [`GET ${s.request.url.href}: connected, ${s.error}`],
      fix: FIX.buffering,
    });
  }
  requireOpen(s);
  await s.reader.waitFor(() => true, SETTLE_MS);
  const t1 = performance.now();
  const o1 = await ctx.publish(run, 1);
  if (!o1.ok) return skip(`could not publish a probe (${o1.cause}): pass --publish-key or --target-var for the profile's publish block`);
  const r1early = await s.reader.waitFor((r) => r === s.reader.probe(run, 1), t1 + SPACING_MS - performance.now());
  await sleep(t1 + SPACING_MS - performance.now());
  const t2 = performance.now();
  await ctx.publish(run, 2);
  await s.reader.waitFor((r) => r === s.reader.probe(run, 2), ctx.config.eventWaitMs);
  const [r1, r2] = [s.reader.probe(run, 1), s.reader.probe(run, 2)];
  const evidence = [`probe 1 published at 0 ms, ${arrival(r1, t1, s)}`, `probe 2 published at ${ms(t2 - t1)}, ${arrival(r2, t2, s)}`];
  evidence.push(`${s.reader.wireBytes()} body bytes in ${s.raw.pieces.length} reads since the head`);
  const fix = s.head.headers['content-encoding'] ? [...FIX.buffering, ...FIX.compression] : [...FIX.buffering];
  const values = { firstMs: r1 ? Math.round(r1.at - t1) : null, secondMs: r2 ? Math.round(r2.at - t2) : null };
  if (!r1 && !r2) return fail(`neither probe arrived within ${ms(ctx.config.eventWaitMs)}: the stream is buffered on the path`, { evidence, fix, values });
  if (!r1early || !r1 || (r2 && r1.read === r2.read)) {
    return fail('probe 1 was held back and arrived with probe 2: the stream is buffered on the path', { evidence, fix, values });
  }
  if (!r2) return fail(`probe 2 did not arrive within ${ms(ctx.config.eventWaitMs)}: the stream is buffered on the path`, { evidence, fix, values });
  return pass(`each probe arrived on its own read, ${ms(r1.at - t1)} and ${ms(r2.at - t2)} after publishing`, { evidence, values });
}

export const STREAMING_CHECKS: Check[] = [{ name: 'sse-streaming', title: 'SSE streamed, not buffered', run: sseStreaming }];
