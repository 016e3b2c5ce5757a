/**
 * Before a swarm run opens anything: the capacity check (refused with exit 2 when the machine cannot hold it), the
 * scenario's broker and server started, the embedded notify serve when there is no --url, every server answering,
 * and the server side of the self-check sampling from then on.
 */
import { Agent, request as undiciRequest } from 'undici';
import { NotifyError, ExitCode } from '../errors.js';
import { planCapacity, readLimits, type CapacityGiven } from '../capacity/planner.js';
import { ServerSampler } from '../capacity/server-load.js';
import { shardConns, type SwarmConfig } from './config.js';
import { startEmbeddedServer, type EmbeddedServer } from './embedded.js';
import { ManagedProcess } from './managed-process.js';

/** Processes a scenario starts and its restart phases act on. */
export interface Processes {
  server?: ManagedProcess;
  broker?: ManagedProcess;
}

const LOOPBACK_HOST = /^(127\.|localhost$|\[::1\]$)/;

/** The same listening socket: the same port, on the same host or on loopback both (`localhost` and `127.0.0.1`). */
function sameServer(a: URL, b: URL): boolean {
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  const host = (u: URL) => (LOOPBACK_HOST.test(u.hostname) ? 'loopback' : u.hostname);
  return port(a) === port(b) && host(a) === host(b);
}

/**
 * The scenario's `server:` as the planner checks it: the subscribers of the URLs it listens on (those on the host and
 * port of its `ready` URL), since workers spread connections over the URLs in turn. None there (a --url given on the
 * command line in place of the file's): nothing of the run reaches it, nothing to check.
 */
function startedServer(config: SwarmConfig, conns: number): CapacityGiven['startedServer'] {
  const server = config.scenario?.server;
  if (!server) return undefined;
  const ready = new URL(server.ready);
  const its = config.urls.filter((u) => sameServer(new URL(u), ready)).length;
  if (its === 0) return undefined;
  return { field: `scenario ${config.scenario!.file}: server.command`, command: server.command, conns: Math.ceil((conns * its) / config.urls.length) };
}

/**
 * Worker processes and source addresses for the run, or a usage error (exit 2) naming the limit and the fix when the
 * machine cannot hold it; `embeddedServer` also checks the server the run would start itself, and a scenario's
 * `server:` is checked as the process it starts.
 */
export function planWorkers(config: SwarmConfig, isLoopback: boolean, embeddedServer = false): { workers: number; localAddresses: string[]; notes: string[] } {
  const limits = readLimits();
  const conns = shardConns(config.conns, config.shard);
  const auto = planCapacity(limits, conns);
  const workers = config.workers || auto.workersNeeded;
  let localAddresses = config.localAddresses;
  if (localAddresses.length === 0 && auto.addressesNeeded > 1 && isLoopback) {
    localAddresses = Array.from({ length: auto.addressesNeeded }, (_, i) => `127.0.0.${i + 1}`);
  }
  const plan = planCapacity(limits, conns, {
    workers,
    addresses: Math.max(1, localAddresses.length),
    embeddedServer,
    startedServer: startedServer(config, conns),
  });
  if (!plan.fits) {
    const what = config.shard ? `shard ${config.shard.index}/${config.shard.count}'s ${conns} of --conns ${config.conns}` : `--conns ${conns}`;
    throw new NotifyError('E_CAPACITY', `${what} does not fit this machine: ${plan.problems.join('; ')}`, {
      exitCode: ExitCode.usage,
      hint: 'run `notify doctor` for the limits it read',
    });
  }
  return { workers, localAddresses, notes: plan.notes };
}

/**
 * Any HTTP answer means the server is there (notify serve's /healthz; another server's --url itself, whatever it
 * answers); a refused or timed-out connection ends the run before it starts.
 */
async function preflight(url: string, target: SwarmConfig['target'], insecureTls: boolean): Promise<void> {
  const probeUrl = target.dialect === 'notify' ? url + '/healthz' : url;
  // --insecure-tls: a self-signed test server must pass the check its subscribers will pass.
  const dispatcher = insecureTls ? new Agent({ connect: { rejectUnauthorized: false } }) : undefined;
  try {
    await undiciRequest(probeUrl, { signal: AbortSignal.timeout(5000), dispatcher }).then((r) => r.body.dump());
  } catch (err) {
    const e = err as { code?: string; cause?: { code?: string } };
    const cause = e.cause?.code ?? e.code ?? (err as Error).name;
    const certificate = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY/.test(cause);
    throw new NotifyError('E_UNREACHABLE', `cannot reach ${url} (${cause})${certificate ? '' : ': is the server running?'}`, {
      hint: certificate
        ? "the server's certificate is not trusted here; for a self-signed test certificate add --insecure-tls"
        : target.dialect === 'notify'
          ? 'start one with `notify serve`, or leave out --url to let the swarm start its own'
          : `the ${target.source} profile subscribes there`,
    });
  } finally {
    await dispatcher?.close();
  }
}

/**
 * The servers of the run, each answering: the --url ones, or a notify serve started for it (handed to `started` at
 * once, so that it is stopped whatever happens next). Before anything starts, a run that cannot fit (its own server
 * included) is refused rather than begun and lost.
 */
export async function prepare(
  config: SwarmConfig,
  note: (line: string) => void,
  started: (server: EmbeddedServer) => void,
  processes: Processes,
): Promise<{ urls: string[]; workers: number; localAddresses: string[]; serverLoad: ServerSampler }> {
  let urls = config.urls;
  const loopback = urls.every((u) => LOOPBACK_HOST.test(new URL(u).hostname));
  const plan = planWorkers(config, loopback, urls.length === 0);
  // A scenario's server the planner could not judge (not a notify serve) may still run out of descriptors: say so.
  for (const line of plan.notes.filter((n) => n.startsWith('scenario '))) note(line);
  // The scenario's own broker first (the server may need it), then its server.
  for (const role of ['broker', 'server'] as const) {
    const spec = config.scenario?.[role];
    if (spec === undefined) continue;
    const proc = (processes[role] = new ManagedProcess(role, spec.command, spec.ready));
    const ms = await proc.start();
    note(`started the scenario's ${role} \`${spec.command}\` (ready after ${ms.toFixed(0)} ms)`);
  }
  if (urls.length === 0) {
    // --http2 against its own server: cleartext h2 by prior knowledge (there is no certificate to offer).
    const embedded = await startEmbeddedServer(config.http2 ? ['--h2c'] : []);
    started(embedded);
    urls = [embedded.url];
    note(`started embedded notify serve at ${embedded.url} (pid ${embedded.pid})`);
  }
  await Promise.all(urls.map((u) => preflight(u, config.target, config.insecureTls)));
  // The server side of the self-check: each --url's /metrics from before the ramp to after the drain.
  return { urls, workers: plan.workers, localAddresses: plan.localAddresses, serverLoad: ServerSampler.started(urls) };
}
