/** `burst`: that many probes at once on the streams named; the phase lasts until they have left. */
import type { KindOf } from './index.js';

export const burst: KindOf<'burst'> = {
  async run(p, ctx) {
    const sent = ctx.publisher.burst(p.count, p.streams);
    // The phase lasts until its probes have left: those queued behind a request in flight belong to it too.
    await ctx.publisher.flushed(10_000);
    return { sent };
  },
};
