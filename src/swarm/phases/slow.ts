/** `slow`: a share of the open connections stops reading for the duration (the server's slow-consumer policy acts on them), then reads again. */
import type { KindOf } from './index.js';

export const slow: KindOf<'slow'> = {
  async run(p, ctx, startAt) {
    ctx.send({ type: 'slow', share: p.share, durationMs: p.durationMs });
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};
