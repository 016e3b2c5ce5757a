/**
 * Controller of the live dashboard: mounts <Dashboard> with ink on the stream it is given (stderr in the CLI, a
 * fake TTY in tests), re-renders on every snapshot (about 1/s; ink caps it at 10 fps), collects notes, turns `q`
 * and Ctrl-C into a stop request, and leaves the last frame on screen when the run ends.
 */
import { PassThrough, type Writable } from 'node:stream';
import { render, type Instance } from 'ink';
import { createElement } from 'react';
import type { Io } from '../io.js';
import type { SwarmSnapshot } from '../metrics/snapshot.js';
import { Dashboard, type DashboardProps, type FinalFigures } from './DashboardView.js';
import type { PhasePlan } from './format.js';

export interface DashboardOptions {
  /** Where frames go: must be a TTY-like stream (isTTY, columns, rows). */
  out: Writable;
  /** Keypresses (`q`, Ctrl-C) are read from it when it is a TTY that supports raw mode. */
  stdin?: Io['stdin'];
  color: boolean;
  title: string;
  plan: PhasePlan;
  /** Frame rate cap (default 10). */
  maxFps?: number;
}

export interface DashboardController {
  update: (snapshot: SwarmSnapshot) => void;
  note: (line: string) => void;
  /** Resolves with a reason when the user presses `q` or Ctrl-C. */
  readonly stopRequested: Promise<string>;
  /** Draws the last frame (with the final audit figures when given), unmounts and restores the terminal. */
  finish: (final?: FinalFigures) => Promise<void>;
}

export function startDashboard(options: DashboardOptions): DashboardController {
  const out = options.out as NodeJS.WriteStream;
  let requestStop: (reason: string) => void = () => {};
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  // Without a usable TTY on stdin, give ink a stream of its own so it never reaches for process.stdin.
  const keys = Boolean(options.stdin?.isTTY && typeof options.stdin.setRawMode === 'function');
  const stdin = keys ? options.stdin! : new PassThrough();
  const props: DashboardProps = {
    title: options.title,
    keys,
    plan: options.plan,
    notes: [],
    color: options.color,
    width: out.columns || 80,
    onStop: (reason) => {
      if (props.stopping) return;
      props.stopping = reason;
      requestStop(reason);
      draw();
    },
  };
  const instance: Instance = render(createElement(Dashboard, { ...props }), {
    stdout: out,
    stderr: out,
    stdin: stdin as NodeJS.ReadStream,
    exitOnCtrlC: false,
    patchConsole: false,
    maxFps: options.maxFps ?? 10,
  });
  let finished = false;
  function draw(): void {
    if (finished) return;
    props.width = out.columns || 80;
    instance.rerender(createElement(Dashboard, { ...props }));
  }
  return {
    update(snapshot) {
      props.snapshot = snapshot;
      draw();
    },
    note(line) {
      props.notes = [...props.notes, line];
      draw();
    },
    stopRequested,
    async finish(final) {
      if (finished) return;
      props.final = final;
      draw();
      finished = true;
      instance.unmount();
      await instance.waitUntilExit().catch(() => {});
      instance.cleanup();
    },
  };
}
