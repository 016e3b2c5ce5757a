/**
 * The capacity planner: the machine limits that decide how many connections a load test can open (what `notify
 * doctor` shows), and `planCapacity`, which the swarm calls before opening anything.
 *
 * Node has no API for rlimits or sysctls, so on Linux they are read from /proc: `Max open files` of
 * /proc/self/limits (every socket is a file descriptor), the ephemeral port range (one local port per connection
 * to one server address:port from one source address), somaxconn (accept backlog cap) and tcp_tw_reuse (reuse of
 * TIME_WAIT ports for new outgoing connections). Elsewhere each unreadable value is listed, never guessed.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Descriptors kept back from `ulimit -n` per process: stdio, the event loop, worker pipes, files, DNS. */
export const FD_RESERVE = 100;
/** Loopback source addresses 127.0.0.1 ... 127.0.0.254 usable with --local-address. */
export const MAX_LOOPBACK_ADDRESSES = 254;
/** Ports 1024-65535: the widest ephemeral range that leaves the well-known ports alone. */
export const WIDEST_PORT_RANGE = 65535 - 1024 + 1;
/** Sockets the swarm's publisher may hold to a server (its pool size), on top of the subscribers. */
export const PUBLISHER_SOCKETS = 32;
/** Rough client-side memory per open connection (socket buffers, parser, bookkeeping), for the memory check. */
export const BYTES_PER_CONNECTION = 16 * 1024;

export interface SystemLimits {
  platform: string;
  /** e.g. `20.20.2`. */
  nodeVersion: string;
  cpus: number;
  freeMemoryBytes: number;
  totalMemoryBytes: number;
  /** `ulimit -n`: soft is what a process gets, hard is how far it may raise it. Absent when unreadable. */
  openFiles?: { soft: number; hard: number };
  /** Local ports the kernel picks from for outgoing connections, inclusive. */
  ephemeralPorts?: { low: number; high: number };
  /** net.core.somaxconn: cap on a listening socket's accept backlog. */
  somaxconn?: number;
  /** net.ipv4.tcp_tw_reuse: 0 off, 1 on, 2 loopback only. */
  tcpTwReuse?: number;
  /** What could not be read and why, e.g. `/proc/self/limits (ENOENT)`. */
  unreadable: string[];
}

export interface LimitSources {
  readFile(path: string): string;
  platform: string;
  nodeVersion: string;
  cpus: number;
  freeMemoryBytes: number;
  totalMemoryBytes: number;
}

export function systemSources(): LimitSources {
  return {
    readFile: (path) => readFileSync(path, 'utf8'),
    platform: os.platform(),
    nodeVersion: process.versions.node,
    cpus: os.availableParallelism?.() ?? os.cpus().length,
    freeMemoryBytes: os.freemem(),
    totalMemoryBytes: os.totalmem(),
  };
}

/** Reads every limit it can; never throws. */
export function readLimits(src: LimitSources = systemSources()): SystemLimits {
  const limits: SystemLimits = {
    platform: src.platform,
    nodeVersion: src.nodeVersion,
    cpus: src.cpus,
    freeMemoryBytes: src.freeMemoryBytes,
    totalMemoryBytes: src.totalMemoryBytes,
    unreadable: [],
  };
  const read = <T>(path: string, parse: (text: string) => T | undefined): T | undefined => {
    let text: string;
    try {
      text = src.readFile(path);
    } catch (err) {
      limits.unreadable.push(`${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      return undefined;
    }
    const v = parse(text);
    if (v === undefined) limits.unreadable.push(`${path} (unexpected content)`);
    return v;
  };
  limits.openFiles = read('/proc/self/limits', parseOpenFiles);
  limits.ephemeralPorts = read('/proc/sys/net/ipv4/ip_local_port_range', parsePortRange);
  limits.somaxconn = read('/proc/sys/net/core/somaxconn', parseNumber);
  limits.tcpTwReuse = read('/proc/sys/net/ipv4/tcp_tw_reuse', parseNumber);
  return limits;
}

/** `Max open files  20000  20000  files` from /proc/self/limits; `unlimited` reads as MAX_SAFE_INTEGER. */
export function parseOpenFiles(text: string): { soft: number; hard: number } | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(text);
  if (!m) return undefined;
  const n = (v: string) => (v === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(v));
  return { soft: n(m[1]!), hard: n(m[2]!) };
}

/** `32768\t60999` from ip_local_port_range. */
export function parsePortRange(text: string): { low: number; high: number } | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2]);
  return high >= low ? { low, high } : undefined;
}

function parseNumber(text: string): number | undefined {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : undefined;
}

/** Connections one process can hold: soft open-files limit minus FD_RESERVE. Undefined when unknown. */
export function connectionsPerProcess(limits: SystemLimits): number | undefined {
  return limits.openFiles && Math.max(0, limits.openFiles.soft - FD_RESERVE);
}

/** Connections to one server address:port from one source address: the size of the ephemeral port range. */
export function connectionsPerAddress(limits: SystemLimits): number | undefined {
  return limits.ephemeralPorts && limits.ephemeralPorts.high - limits.ephemeralPorts.low + 1;
}

export interface CapacityPlan {
  /** True when `conns` fit in the given workers and source addresses (and in free memory). */
  fits: boolean;
  /** Worker processes needed at `perProcess` connections each (1 when the limit is unknown). */
  workersNeeded: number;
  /** Source addresses (127.0.0.x) needed at `perAddress` connections each (1 when unknown). */
  addressesNeeded: number;
  perProcess?: number;
  perAddress?: number;
  /** What to change, one sentence each, when `fits` is false. */
  problems: string[];
  /** Worth knowing but not blocking: values that could not be read, the server's own limits. */
  notes: string[];
}

export interface CapacityGiven {
  /** Worker processes the run will use. Default 1. */
  workers?: number;
  /** Source addresses the run will use. Default 1. */
  addresses?: number;
  /**
   * The run starts its own notify serve on this machine (no --url): one process under the same `ulimit -n`, which
   * must hold every subscriber plus the publisher's sockets, so a run that cannot fit it is refused.
   */
  embeddedServer?: boolean;
  /**
   * A server the run starts itself on this machine from a scenario (`server: {command, ready}`): `field` names it in
   * the problem (`scenario x.yaml: server.command`), `conns` is how many of the run's subscribers it serves. It
   * inherits the swarm's `ulimit -n`; when its command is a notify serve (one process), it must hold them all.
   */
  startedServer?: { field: string; command: string; conns: number };
}

/** `notify serve ...`, `node bin/notify.js serve ...`, `npx notify serve`: one process, its connections under one limit. */
const ONE_PROCESS_SERVER = /(?:^|[\s/])notify(?:\.js)?\s+serve(?:\s|$)/;

/**
 * The scenario's own server against the open-files limit it inherits: a problem when it is a notify serve that
 * cannot hold its subscribers and the publisher's sockets; a note when its process model is unknown (nginx runs
 * workers of its own and raises their limit with worker_rlimit_nofile; a wrapper may start a cluster), so not judged.
 */
function startedServerCheck(
  limits: SystemLimits,
  perProcess: number,
  server: NonNullable<CapacityGiven['startedServer']>,
): { problem?: string; note?: string } {
  const needs = server.conns + PUBLISHER_SOCKETS;
  if (needs <= perProcess) return {};
  const { soft, hard } = limits.openFiles!;
  if (!ONE_PROCESS_SERVER.test(server.command)) {
    return {
      note: `${server.field} \`${server.command}\` runs under ulimit -n ${soft}: one process of it holds at most ${perProcess} connections (not checked: its process model is unknown)`,
    };
  }
  const raise = soft < hard && needs <= hard - FD_RESERVE ? `raise the limit with \`ulimit -n ${hard}\` before running (the server inherits it), or ` : '';
  return {
    problem:
      `${server.field} \`${server.command}\` is one notify serve process under ulimit -n ${soft} (inherited from the swarm): it holds at most ${perProcess} connections ` +
      `(${FD_RESERVE} descriptors kept back), but ${server.conns} subscribers and ${PUBLISHER_SOCKETS} publisher sockets need ${needs}: ${raise}` +
      `lower conns, or start the servers yourself (several \`notify serve\` with a higher limit, or on other machines) and list each in url:`,
  };
}

/**
 * Whether `conns` connections fit on this machine with the given workers and source addresses, and if not,
 * exactly what to change. Pure: `limits` comes from `readLimits` (or a test).
 */
export function planCapacity(limits: SystemLimits, conns: number, given: CapacityGiven = {}): CapacityPlan {
  const workers = given.workers ?? 1;
  const addresses = given.addresses ?? 1;
  const perProcess = connectionsPerProcess(limits);
  const perAddress = connectionsPerAddress(limits);
  const problems: string[] = [];
  const notes: string[] = [];

  let workersNeeded = 1;
  if (perProcess === undefined) {
    notes.push(`open-files limit unknown (${unreadableOf(limits, '/proc/self/limits')}): check \`ulimit -n\`; each connection needs one`);
  } else if (perProcess === 0) {
    workersNeeded = conns;
    problems.push(
      `ulimit -n is ${limits.openFiles!.soft}, below the ${FD_RESERVE} descriptors a process needs for itself: raise it with \`ulimit -n ${limits.openFiles!.hard}\``,
    );
  } else {
    workersNeeded = Math.max(1, Math.ceil(conns / perProcess));
    if (workersNeeded > workers) {
      const { soft, hard } = limits.openFiles!;
      const raise =
        soft < hard && conns <= hard - FD_RESERVE
          ? `raise the soft limit with \`ulimit -n ${hard}\` before running, or use`
          : `ulimit -n is ${soft} (hard ${hard}${soft >= hard ? ', a hard limit here' : ''}): use`;
      problems.push(`${conns} connections need ${workersNeeded} worker processes at ${perProcess} per process; ${raise} --workers ${workersNeeded} or more`);
    }
    const serverNeeds = conns + PUBLISHER_SOCKETS;
    if (given.embeddedServer && serverNeeds > perProcess) {
      const { soft, hard } = limits.openFiles!;
      const raise = soft < hard && serverNeeds <= hard - FD_RESERVE ? `raise the limit with \`ulimit -n ${hard}\` before running, or ` : '';
      problems.push(
        `the embedded notify serve is one process and holds at most ${perProcess} connections at ulimit -n ${soft} (${FD_RESERVE} descriptors kept back), ` +
          `but ${conns} subscribers and ${PUBLISHER_SOCKETS} publisher sockets need ${serverNeeds}: ${raise}start several \`notify serve\` with a higher limit ` +
          `(or on other machines) and pass each with --url`,
      );
    } else if (conns > perProcess && !given.startedServer) {
      notes.push(
        `a notify serve on this machine is one process: it can hold ${perProcess} connections at this ulimit -n; run it with a higher limit or on another machine`,
      );
    }
  }

  if (given.startedServer && perProcess !== undefined && perProcess > 0) {
    const { problem, note } = startedServerCheck(limits, perProcess, given.startedServer);
    if (problem) problems.push(problem);
    if (note) notes.push(note);
  }

  let addressesNeeded = 1;
  if (perAddress === undefined) {
    notes.push(
      `ephemeral port range unknown (${unreadableOf(limits, '/proc/sys/net/ipv4/ip_local_port_range')}): one source address reaches one server address with at most ~28000 connections on Linux defaults`,
    );
  } else {
    addressesNeeded = Math.max(1, Math.ceil(conns / perAddress));
    const { low, high } = limits.ephemeralPorts!;
    const widen = perAddress < WIDEST_PORT_RANGE ? 'widen the range with `sysctl -w net.ipv4.ip_local_port_range="1024 65535"`' : '';
    if (addressesNeeded > MAX_LOOPBACK_ADDRESSES) {
      problems.push(
        `${conns} connections need ${addressesNeeded} source addresses at ${perAddress} ephemeral ports (${low}-${high}) each, more than the ${MAX_LOOPBACK_ADDRESSES} of 127.0.0.x: ` +
          `${widen ? `${widen}, or ` : ''}add server addresses (several --url)`,
      );
    } else if (addressesNeeded > addresses) {
      problems.push(
        `${conns} connections need ${addressesNeeded} source addresses at ${perAddress} ephemeral ports (${low}-${high}) each to one server address: ` +
          `use --local-address 127.0.0.1-127.0.0.${addressesNeeded} (loopback)${widen ? `, or ${widen}` : ''}`,
      );
    }
  }

  const memory = conns * BYTES_PER_CONNECTION;
  if (memory > limits.freeMemoryBytes) {
    problems.push(
      `${conns} connections need about ${mb(memory)} of memory on the client side (~${BYTES_PER_CONNECTION / 1024} KB each), ` +
        `${mb(limits.freeMemoryBytes)} is free: use fewer --conns or spread the swarm over several machines`,
    );
  }
  for (const u of limits.unreadable) if (!notes.some((n) => n.includes(u))) notes.push(`could not read ${u}`);

  return { fits: problems.length === 0, workersNeeded, addressesNeeded, perProcess, perAddress, problems, notes };
}

function unreadableOf(limits: SystemLimits, path: string): string {
  return limits.unreadable.find((u) => u.startsWith(path)) ?? `${path} not read on ${limits.platform}`;
}

export function mb(bytes: number): string {
  return bytes >= 10 * 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(0)} GB` : `${Math.round(bytes / 1024 ** 2)} MB`;
}

export type Verdict = 'ok' | 'limit' | 'warn' | 'unknown';

/** One line of `notify doctor`: what was read, whether it is fine for load tests, and what to change. */
export interface LimitCheck {
  check: string;
  value: string;
  verdict: Verdict;
  advice: string;
}

const MIN_NODE = [20, 18] as const;

/** The doctor's lines for `ulimit -n`: the limit itself and the connections one process can hold under it. */
function openFilesRows(limits: SystemLimits, unknown: (check: string, path: string, how: string) => LimitCheck): LimitCheck[] {
  const out: LimitCheck[] = [];
  const perProcess = connectionsPerProcess(limits);
  if (!limits.openFiles || perProcess === undefined) {
    out.push(unknown('Open files (ulimit -n)', '/proc/self/limits', '`ulimit -Sn` and `ulimit -Hn`'));
  } else {
    const { soft, hard } = limits.openFiles;
    const raiseHard = 'beyond it: LimitNOFILE= (systemd), /etc/security/limits.conf, or docker run --ulimit nofile=N:N';
    out.push({
      check: 'Open files (ulimit -n)',
      value: `soft ${soft}, hard ${hard}`,
      verdict: soft >= 100_000 ? 'ok' : soft < hard ? 'warn' : 'limit',
      advice:
        soft < hard
          ? `raise the soft limit to the hard one with \`ulimit -n ${hard}\` in the shell that runs notify; ${raiseHard}`
          : `\`ulimit -n\` is a hard limit here: use several worker processes (--workers); ${raiseHard}`,
    });
    out.push({
      check: 'Connections per process',
      value: String(perProcess),
      verdict: soft >= 100_000 ? 'ok' : 'limit',
      advice: `soft limit minus ${FD_RESERVE} reserved descriptors; a swarm worker or one notify serve holds at most this`,
    });
  }
  return out;
}

/** The doctor's lines for these limits; `addresses` is the source-address count shown in the spread line. */
export function checkLimits(limits: SystemLimits, addresses = 8): LimitCheck[] {
  const rows: LimitCheck[] = [];
  const unknown = (check: string, path: string, how: string): LimitCheck => ({
    check,
    value: 'unknown',
    verdict: 'unknown',
    advice: `could not read ${unreadableOf(limits, path)}: check with ${how}`,
  });

  const [major = 0, minor = 0] = limits.nodeVersion.split('.').map(Number);
  const nodeOk = major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1]);
  rows.push({
    check: 'Node.js',
    value: `v${limits.nodeVersion}`,
    verdict: nodeOk ? 'ok' : 'warn',
    advice: nodeOk ? '' : `notify needs Node >= ${MIN_NODE.join('.')}: upgrade Node`,
  });
  rows.push({
    check: 'CPU cores',
    value: String(limits.cpus),
    verdict: limits.cpus >= 2 ? 'ok' : 'warn',
    advice:
      limits.cpus >= 2
        ? `more than ${limits.cpus} workers share cores; the swarm's self-check says when the client is saturated`
        : 'one core: client and server compete for it, latency under load reads high; use another machine for one of them',
  });
  const memConns = Math.floor(limits.freeMemoryBytes / BYTES_PER_CONNECTION);
  rows.push({
    check: 'Free memory',
    value: `${mb(limits.freeMemoryBytes)} of ${mb(limits.totalMemoryBytes)}`,
    verdict: 'ok',
    advice: `room for ~${memConns} client connections at ~${BYTES_PER_CONNECTION / 1024} KB each`,
  });

  const perProcess = connectionsPerProcess(limits);
  rows.push(...openFilesRows(limits, unknown));

  rows.push(...portRows(limits, addresses, perProcess, unknown));

  if (limits.somaxconn === undefined) {
    rows.push(unknown('Accept backlog (somaxconn)', '/proc/sys/net/core/somaxconn', '`sysctl net.core.somaxconn`'));
  } else {
    const ok = limits.somaxconn >= 4096;
    rows.push({
      check: 'Accept backlog (somaxconn)',
      value: String(limits.somaxconn),
      verdict: ok ? 'ok' : 'warn',
      advice: ok
        ? "caps every server's listen backlog (Node asks for 511)"
        : 'a reconnect storm overflows the accept queue and clients wait for SYN retries (1s, 3s, ...): `sysctl -w net.core.somaxconn=4096`',
    });
  }

  if (limits.tcpTwReuse === undefined) {
    rows.push(unknown('TIME_WAIT reuse (tcp_tw_reuse)', '/proc/sys/net/ipv4/tcp_tw_reuse', '`sysctl net.ipv4.tcp_tw_reuse`'));
  } else {
    const v = limits.tcpTwReuse;
    rows.push({
      check: 'TIME_WAIT reuse (tcp_tw_reuse)',
      value: `${v}${v === 2 ? ' (loopback only)' : v === 1 ? ' (on)' : ' (off)'}`,
      verdict: v === 0 ? 'warn' : 'ok',
      advice:
        v === 0
          ? 'ports of closed connections stay in TIME_WAIT for 60s, so reconnect storms run out of ports: `sysctl -w net.ipv4.tcp_tw_reuse=1`'
          : v === 2
            ? 'reconnects over loopback reuse TIME_WAIT ports; for a remote server: `sysctl -w net.ipv4.tcp_tw_reuse=1`'
            : '',
    });
  }
  return rows;
}

/** Ephemeral ports, and what they allow per source address and with several. */
function portRows(
  limits: SystemLimits,
  addresses: number,
  perProcess: number | undefined,
  unknown: (check: string, path: string, how: string) => LimitCheck,
): LimitCheck[] {
  const out: LimitCheck[] = [];
  const perAddress = connectionsPerAddress(limits);
  if (!limits.ephemeralPorts || perAddress === undefined) {
    out.push(unknown('Ephemeral ports', '/proc/sys/net/ipv4/ip_local_port_range', '`sysctl net.ipv4.ip_local_port_range`'));
  } else {
    const { low, high } = limits.ephemeralPorts;
    const wide = perAddress >= 60_000;
    out.push({
      check: 'Ephemeral ports',
      value: `${low}-${high} (${perAddress})`,
      verdict: wide ? 'ok' : 'limit',
      advice: wide ? '' : 'more with `sysctl -w net.ipv4.ip_local_port_range="1024 65535"`',
    });
    out.push({
      check: 'Connections per source address',
      value: String(perAddress),
      verdict: 'limit',
      advice: 'to one server address:port from one source address: use several --local-address (127.0.0.x on loopback)',
    });
    out.push({
      check: `With ${addresses} source addresses`,
      value: String(perAddress * addresses),
      verdict: 'ok',
      advice:
        `--local-address 127.0.0.1-127.0.0.${addresses}` +
        (perProcess !== undefined ? ` and --workers ${Math.max(1, Math.ceil((perAddress * addresses) / Math.max(1, perProcess)))} to hold them all` : ''),
    });
  }

  return out;
}
