/**
 * How a running swarm shows its progress, decided once (STYLE.md "Output discipline"): the ink dashboard on an
 * interactive terminal (stderr is a TTY, not CI, TERM is not dumb) unless --no-dashboard; otherwise a plain status
 * line every few seconds and notes as lines. Everything goes to io.stderr.
 *
 * The dashboard (ink, react and their dependencies: hundreds of modules) is imported only when it is shown. Node's
 * ESM loader reads a static import graph with many files open at once, so loading it with every command kept
 * `notify serve` from starting at `ulimit -n 300` (EMFILE), and cost every plain run its load time.
 */
import type { Io } from '../io.js';
import type { SwarmSnapshot } from '../metrics/snapshot.js';
import type { PhasePlan } from './format.js';
import type { FinalFigures } from './DashboardView.js';
import { statusLine } from './status-line.js';

export interface ProgressView {
  readonly kind: 'dashboard' | 'lines';
  onSnapshot: (snapshot: SwarmSnapshot) => void;
  onNote: (line: string) => void;
  /** Resolves when the user asks the view to stop (q / Ctrl-C in the dashboard); never for plain lines. */
  readonly stopRequested: Promise<string>;
  /** Ends the view (the dashboard keeps its last frame, with the final audit figures when given). */
  finish: (final?: FinalFigures) => Promise<void>;
}

export interface ProgressOptions {
  /** --no-dashboard sets this to false. */
  dashboard: boolean;
  title: string;
  plan: PhasePlan;
}

export async function createProgressView(io: Io, options: ProgressOptions): Promise<ProgressView> {
  if (io.interactive && options.dashboard) {
    const { startDashboard } = await import('./dashboard.js');
    const d = startDashboard({ out: io.stderr, stdin: io.stdin, color: io.color, title: options.title, plan: options.plan });
    return { kind: 'dashboard', onSnapshot: d.update, onNote: d.note, stopRequested: d.stopRequested, finish: d.finish };
  }
  // A person watching (--no-dashboard on a terminal) gets a line a second; logs get one every 5 s.
  const every = io.interactive ? 1 : 5;
  let n = 0;
  return {
    kind: 'lines',
    onSnapshot(snapshot) {
      if (snapshot.phase === 'done' || ++n % every === 0) io.stderr.write(statusLine(snapshot) + '\n');
    },
    onNote: (line) => void io.stderr.write(`${line}\n`),
    stopRequested: new Promise<string>(() => {}),
    finish: async () => {},
  };
}
