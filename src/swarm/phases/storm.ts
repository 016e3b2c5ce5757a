/** `storm`: aborts a share of the open connections at once or spread over a window (a storm the view and the result follow). */
import type { KindOf } from './index.js';

/** Workers report once a second: a storm's figures are complete a tick after its last abort. */
const TICK_MS = 1100;
const BACK_WAIT_MS = 10_000;

export const storm: KindOf<'storm'> = {
  async run(p, ctx, startAt) {
    const index = ctx.storm(p.share, p.overMs);
    await ctx.sleepUntil(startAt + p.overMs);
    // The phase lasts until its connections are back (a tick after the last abort at least, 10 s at most), so that
    // its reconnects and what they lost are in its own row rather than the next phase's.
    const settled = Date.now() + TICK_MS;
    const deadline = Date.now() + BACK_WAIT_MS;
    while (!ctx.stopped() && Date.now() < deadline) {
      const { aborted, back } = ctx.stormProgress(index);
      if (Date.now() >= settled && back >= aborted) break;
      await ctx.sleepUntil(Date.now() + 100);
    }
    return { storm: index + 1 };
  },
};
