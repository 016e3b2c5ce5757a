/** `server-restart`, `broker-restart`: a process the scenario started is killed, and started again after `down`. */
import { usageError } from '../../errors.js';
import type { KindOf } from './index.js';

/** How long a restart phase waits for every subscriber to be back after the process is ready again. */
const BACK_WAIT_MS = 30_000;

/** Kills the process, waits `down`, starts it again; then how long until it was ready and every subscriber back. */
export function restart(which: 'server' | 'broker'): KindOf<'server-restart' | 'broker-restart'> {
  return {
    async run(p, ctx) {
      const proc = ctx[which];
      if (proc === undefined) throw usageError(`a ${which}-restart phase needs the scenario's ${which}: {command, ready}`);
      const killedAt = Date.now();
      ctx.note(`${which}-restart: ${p.signal} to \`${proc.command}\``);
      await proc.kill(p.signal);
      await ctx.sleepUntil(killedAt + p.downMs);
      const readyMs = await proc.start();
      const readyAt = Date.now();
      ctx.note(`${which}-restart: ready again after ${readyMs.toFixed(0)} ms`);
      let allBackMs: number | null = null;
      const deadline = readyAt + BACK_WAIT_MS;
      while (!ctx.stopped() && Date.now() < deadline) {
        if (ctx.openNow() >= ctx.conns) {
          allBackMs = Date.now() - killedAt;
          break;
        }
        await ctx.sleepUntil(Date.now() + 100);
      }
      return { downMs: readyAt - killedAt, readyMs, allBackMs };
    },
  };
}
