/**
 * A swarm run whose workers did not all report is a runtime failure (exit 1): its figures leave out their
 * connections. The problems the figures themselves show are judged in result/problems.ts.
 */
import type { RunProblem } from '../result/schema.js';

/**
 * The problem of workers that sent no result (none when all did): which ones, why (`fatal`), and how many of the
 * run's `conns` connections (worker w holds every i with i % workers === w) the figures therefore leave out. A worker
 * that failed but still reported is a problem unless the run was stopping anyway (`stopping`).
 */
export function lostWorkers(workers: number, conns: number, reported: readonly number[], fatal: string | undefined, stopping: boolean): RunProblem[] {
  const missing = Array.from({ length: workers }, (_, w) => w).filter((w) => !reported.includes(w));
  if (missing.length === 0) return fatal && !stopping ? [{ code: 'worker-failed', message: `a swarm worker failed: ${fatal}` }] : [];
  const held = missing.reduce((n, w) => n + Math.ceil((conns - w) / workers), 0);
  const which = `swarm worker${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of ${workers}`;
  const why = fatal ?? 'none came in time';
  return [{ code: 'worker-failed', message: `${which} sent no result (${why}): the figures leave out their ${held} connections` }];
}
