/**
 * Entry of a swarm worker process (forked by the main process). Like bin/notify.js it is a process boundary, so it
 * talks to `process` directly: IPC in, IPC out.
 */
import type { MainToWorker, WorkerToMain } from './messages.js';
import { SwarmWorker } from './worker.js';

const send = (msg: WorkerToMain) => process.send?.(msg);
let worker: SwarmWorker | undefined;

process.on('message', (msg: MainToWorker) => {
  switch (msg.type) {
    case 'start':
      worker = new SwarmWorker(msg.plan, send);
      worker.start().then(
        () => send({ type: 'ready', index: msg.plan.index }),
        (err: Error) => send({ type: 'fatal', index: msg.plan.index, message: err.message }),
      );
      break;
    case 'storm':
      worker?.storm(msg.index, msg.share, msg.overMs);
      break;
    case 'log':
      worker?.log(msg.times, msg.refused);
      break;
    case 'phase':
      worker?.phase(msg.index);
      break;
    case 'churn':
      worker?.churn(msg.rate, msg.durationMs);
      break;
    case 'slow':
      worker?.slow(msg.share, msg.durationMs);
      break;
    case 'finish':
      worker!.finish(msg.sendTimes, msg.refused, msg.windows, msg.ledger).then(
        (result) => process.send!(result, () => process.disconnect()),
        // A worker that cannot report is done: it says why and exits, so the run does not wait for it in vain.
        (err: Error) => process.send!({ type: 'fatal', index: -1, message: err.message } satisfies WorkerToMain, () => process.exit(1)),
      );
      break;
  }
});
// The parent going away ends the worker: no orphan holding thousands of sockets.
process.on('disconnect', () => process.exit(0));
// Ctrl-C on a terminal signals the whole process group. The main process stops the run and asks for every worker's
// result; a worker that died of the signal would take its audit with it (and fail the run instead of stopping it).
process.on('SIGINT', () => {});
