/**
 * The self-check of a run, both sides: whether the swarm's workers (the client) or the servers ran out of CPU, said in
 * one sentence with the figures, and the warning that goes next to the latency figures. The swarm judges its run with
 * it and `notify report --merge` judges the merged run with it again, so a verdict reads the same wherever it comes from.
 */
import type { Bottleneck, ResultFile } from '../result/schema.js';
import type { ServerLoad } from './server-load.js';

/** A worker whose event loop lags this much, or that uses a whole core, is too busy to time receipts well. */
export const CLIENT_SATURATION = { eldP99Ms: 50, cpu: 0.9 };
/** A server whose process uses this share of a core, or whose event loop lags this much, is the bottleneck. */
export const SERVER_SATURATION = { eldP99Ms: 50, cpu: 0.9 };

type WorkerSelfCheck = ResultFile['selfCheck']['workers'][number];

/** The result's `selfCheck` (its schema's type) as a run or a merge writes it: with the verdict, which older files lack. */
export type SelfCheck = ResultFile['selfCheck'] & { bottleneck: Bottleneck; sides: string };

/** A client worker's self-check figures, as the result holds them. */
interface ClientFigures {
  eldP99Ms: number;
  cpuMax: number;
}

const pct = (share: number): string => `${(share * 100).toFixed(0)}%`;
/** Loop lag past the limit while the process used little CPU: it waited for a core (other processes had them). */
const starved = (eldP99Ms: number, cpuMax: number, limit: { eldP99Ms: number; cpu: number }): string =>
  eldP99Ms > limit.eldP99Ms && cpuMax < limit.cpu / 2 ? ', lagging with little CPU of its own: the machine ran out of cores' : '';

/**
 * Which side ran out of CPU: the client (which worker, its figures), the server (which URL, its CPU share of a core
 * and event-loop lag), both, or neither; "server side not measured" when no target exposed metrics.
 */
export function judgeSides(
  workers: readonly ClientFigures[],
  servers: readonly ServerLoad[] | undefined,
  client = CLIENT_SATURATION,
  name = (i: number): string => `worker ${i + 1}`,
): { bottleneck: Bottleneck; text: string } {
  const busyWorkers = workers.map((w, i) => ({ ...w, i })).filter((w) => w.eldP99Ms > client.eldP99Ms || w.cpuMax > client.cpu);
  const busyServers = (servers ?? []).filter((s) => s.saturated);
  const clientText =
    busyWorkers.length > 0
      ? `client saturated: ${busyWorkers.map((w) => `${name(w.i)} (loop p99 ${w.eldP99Ms.toFixed(1)} ms, CPU ${pct(w.cpuMax)} of a core${starved(w.eldP99Ms, w.cpuMax, client)})`).join(', ')}`
      : `client not saturated (worst worker loop p99 ${Math.max(0, ...workers.map((w) => w.eldP99Ms)).toFixed(1)} ms, CPU ${pct(Math.max(0, ...workers.map((w) => w.cpuMax)))})`;
  const serverLine = (s: ServerLoad): string =>
    `${s.url} (CPU ${pct(s.cpuMean)} of a core on average, ${pct(s.cpuMax)} at worst; loop p99 ${s.eldP99Ms.toFixed(1)} ms${starved(s.eldP99Ms, s.cpuMax, SERVER_SATURATION)})`;
  const serverText =
    servers === undefined
      ? 'server side not measured (no Prometheus /metrics with process_cpu_seconds_total)'
      : busyServers.length > 0
        ? `server saturated: ${busyServers.map(serverLine).join(', ')}`
        : `server not saturated: ${servers.map(serverLine).join(', ')}`;
  const bottleneck: Bottleneck =
    busyWorkers.length > 0 ? (busyServers.length > 0 ? 'both' : 'client') : busyServers.length > 0 ? 'server' : servers ? 'neither' : 'unknown';
  return { bottleneck, text: `${clientText}; ${serverText}` };
}

const ADVICE: Partial<Record<Bottleneck, string>> = {
  client: 'latency figures include client-side delay; use more --workers or fewer --conns',
  server: 'latency figures are the server running out of CPU',
  both: 'latency figures include client-side delay and the server running out of CPU',
};

/**
 * The workers' self-check with the servers' load beside it, which side ran out of CPU, and a warning when either was
 * too busy for the latency figures to be the other's alone. `name` names worker `i` in the sentence.
 */
export function selfCheckOf(workers: WorkerSelfCheck[], servers: ServerLoad[] | undefined, name?: (i: number) => string): SelfCheck {
  const worstEld = Math.max(0, ...workers.map((s) => s.eldP99Ms));
  const worstCpu = Math.max(0, ...workers.map((s) => s.cpuMax));
  const saturated = worstEld > CLIENT_SATURATION.eldP99Ms || worstCpu > CLIENT_SATURATION.cpu;
  const { bottleneck, text: sides } = judgeSides(workers, servers, CLIENT_SATURATION, name);
  const warning = ADVICE[bottleneck] && `${sides}: ${ADVICE[bottleneck]}`;
  return { workers, saturated, warning, servers, bottleneck, sides };
}

/**
 * The servers of several results as one list: a URL scraped by several shards (or runs) is one server. Its samples
 * add up; its mean CPU is the shards' means weighted by their samples (each one's window over the same process); its
 * worst interval and loop lag are the worst any shard saw, and `saturated` is judged again on those. Undefined when
 * no result measured a server.
 */
export function mergeServerLoads(lists: readonly (readonly ServerLoad[] | undefined)[]): ServerLoad[] | undefined {
  const byUrl = new Map<string, ServerLoad[]>();
  for (const s of lists.flatMap((l) => l ?? [])) byUrl.set(s.url, [...(byUrl.get(s.url) ?? []), s]);
  if (byUrl.size === 0) return undefined;
  return [...byUrl].map(([url, parts]) => {
    const samples = parts.reduce((a, p) => a + p.samples, 0);
    const cpuMean = samples > 0 ? parts.reduce((a, p) => a + p.cpuMean * p.samples, 0) / samples : 0;
    const cpuMax = Math.max(...parts.map((p) => p.cpuMax));
    const eldP99Ms = Math.max(...parts.map((p) => p.eldP99Ms));
    const saturated = cpuMax > SERVER_SATURATION.cpu || eldP99Ms > SERVER_SATURATION.eldP99Ms;
    return { url, samples, cpuMean, cpuMax, eldP99Ms, saturated };
  });
}
