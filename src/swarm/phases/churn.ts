/** `churn`: the workers close and re-open connections at the rate for the duration; they resume. */
import type { KindOf } from './index.js';

export const churn: KindOf<'churn'> = {
  async run(p, ctx, startAt) {
    ctx.send({ type: 'churn', rate: p.rate / ctx.workers, durationMs: p.durationMs });
    await ctx.sleepUntil(startAt + p.durationMs);
    return {};
  },
};
