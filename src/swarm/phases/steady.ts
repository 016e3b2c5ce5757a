/** `steady`: publishing goes on for the duration, nothing else happens. */
import type { KindOf } from './index.js';

export const steady: KindOf<'steady'> = {
  async run(p, ctx, startAt) {
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};
