/** `storm`: aborts a share of the open connections at once or spread over a window (a storm the view and the result follow). */
import type { KindOf } from './index.js';

export const storm: KindOf<'storm'> = {
  async run(p, ctx, startAt) {
    const index = ctx.storm(p.share, p.overMs);
    await ctx.sleepUntil(startAt + p.overMs);
    return { storm: index + 1 };
  },
};
