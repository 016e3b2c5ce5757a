/**
 * The swarm's worker processes as the main process sees them: forked with their plans, their ticks handed on, the
 * end of their ramp and their final results collected, and a worker that dies noted (never waited for).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { MainToWorker, WorkerPlan, WorkerResult, WorkerTick, WorkerToMain } from './messages.js';

const WORKER = fileURLToPath(new URL('./worker-main.js', import.meta.url));

export interface FleetEvents {
  tick: (tick: WorkerTick) => void;
  /** A worker failed (a `fatal` message, or it exited without its result): why. */
  failed: (why: string) => void;
}

export class WorkerFleet {
  readonly children: ChildProcess[] = [];
  readonly results: WorkerResult[] = [];
  /** The first failure of a worker, if any. */
  fatal: string | undefined;
  /** Resolves once every worker has finished its first connection attempts. */
  readonly rampDone: Promise<void>;
  /** Epoch ms at which the last worker said it had begun its ramp (undefined until all have). */
  readyAt: number | undefined;
  /** Resolves once every worker has sent its result or exited without one. */
  private readonly allIn: Promise<void>;

  /** Forks one worker per plan (index = its position) and starts it. */
  constructor(plans: readonly WorkerPlan[], events: FleetEvents) {
    let ramped = 0;
    let ready = 0;
    let wakeRamped: () => void = () => {};
    this.rampDone = new Promise<void>((r) => (wakeRamped = r));
    const done = new Set<number>();
    let wakeAllIn: () => void = () => {};
    this.allIn = new Promise<void>((r) => (wakeAllIn = r));
    const settle = (w: number) => {
      done.add(w);
      if (done.size === plans.length) wakeAllIn();
    };
    const fail = (why: string) => {
      this.fatal ??= why;
      events.failed(why);
    };
    plans.forEach((plan, w) => {
      const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      this.children.push(child);
      child.on('message', (msg: WorkerToMain) => {
        if (msg.type === 'tick') events.tick(msg);
        else if (msg.type === 'ready') {
          if (++ready === plans.length) this.readyAt = Date.now();
        } else if (msg.type === 'ramped') {
          if (++ramped === plans.length) wakeRamped();
        } else if (msg.type === 'result') {
          this.results.push(msg);
          settle(w);
        } else if (msg.type === 'fatal') fail(msg.message);
      });
      // 'close', not 'exit': it comes after the IPC channel is drained, so a result sent just before exiting is in.
      child.on('close', (code, signal) => {
        if (this.results.some((r) => r.index === w)) return;
        fail(`worker ${w} exited with ${signal ?? `code ${code}`}`);
        settle(w);
      });
      child.send({ type: 'start', plan } satisfies MainToWorker);
    });
  }

  /** Sends to every worker still connected. */
  send(msg: MainToWorker): void {
    for (const child of this.children) if (child.connected) child.send(msg);
  }

  /**
   * Asks every worker for its result; resolves when all are in, or after `waitMs` with what came. `ledger`: without
   * a publisher's log, the workers send their subscribers' ledgers for the merge to settle.
   */
  async finish(
    sendTimes: Record<string, number[]>,
    refused: Record<string, number[]>,
    waitMs: number,
    windows: [number, number][] = [],
    ledger = false,
  ): Promise<WorkerResult[]> {
    this.send({ type: 'finish', sendTimes, refused, windows, ledger });
    await Promise.race([this.allIn, new Promise((r) => setTimeout(r, waitMs).unref())]);
    return this.results;
  }

  /** Ends the workers still running. */
  kill(): void {
    for (const child of this.children) if (child.exitCode === null) child.kill();
  }
}
