/**
 * `notify doctor`: reads the machine's limits (open files, ephemeral ports, somaxconn, tcp_tw_reuse, memory,
 * cores), says how many connections one process, one source address and several can hold, and what to change.
 * With `--conns N` it also plans N connections (exit 1 when they do not fit as given).
 */
import { Chalk } from 'chalk';
import Table from 'cli-table3';
import { Command } from 'commander';
import { ExitCode } from '../errors.js';
import type { Io } from '../io.js';
import {
  checkLimits,
  connectionsPerAddress,
  connectionsPerProcess,
  planCapacity,
  readLimits,
  type CapacityPlan,
  type LimitCheck,
  type LimitSources,
  type SystemLimits,
  type Verdict,
} from '../capacity/planner.js';
import { parseInteger } from '../util/parse.js';

export interface RawDoctorOptions {
  json?: boolean;
  conns?: string;
  workers?: string;
  addresses?: string;
  embedded?: boolean;
}

export interface DoctorConfig {
  json: boolean;
  /** Connections to plan for; undefined = no plan. */
  conns?: number;
  /** Workers and source addresses the planned run would use (default 1 each, like a plain swarm run). */
  workers: number;
  addresses: number;
  /** Source addresses shown in the spread line (the given --addresses, else 8). */
  spread: number;
  /** The planned run starts its own notify serve (`notify swarm` without --url): that one process must hold them all. */
  embedded: boolean;
}

export function resolveDoctorOptions(raw: RawDoctorOptions): DoctorConfig {
  return {
    json: Boolean(raw.json),
    conns: raw.conns === undefined ? undefined : parseInteger('--conns', raw.conns, 1),
    workers: parseInteger('--workers', raw.workers ?? '1', 1, 1024),
    addresses: parseInteger('--addresses', raw.addresses ?? '1', 1, 254),
    spread: raw.addresses === undefined ? 8 : parseInteger('--addresses', raw.addresses, 1, 254),
    embedded: Boolean(raw.embedded),
  };
}

/** What `--json` prints. */
export interface DoctorReport {
  limits: SystemLimits;
  connectionsPerProcess: number | null;
  connectionsPerAddress: number | null;
  /** The spread over `addresses` source addresses 127.0.0.1 ... 127.0.0.N. */
  withAddresses: { addresses: number; connections: number | null };
  checks: LimitCheck[];
  plan?: CapacityPlan & { conns: number; workers: number; addresses: number };
}

export function doctorReport(config: DoctorConfig, limits: SystemLimits): DoctorReport {
  const perAddress = connectionsPerAddress(limits);
  const report: DoctorReport = {
    limits,
    connectionsPerProcess: connectionsPerProcess(limits) ?? null,
    connectionsPerAddress: perAddress ?? null,
    withAddresses: { addresses: config.spread, connections: perAddress === undefined ? null : perAddress * config.spread },
    checks: checkLimits(limits, config.spread),
  };
  if (config.conns !== undefined) {
    const given = { workers: config.workers, addresses: config.addresses };
    report.plan = { conns: config.conns, ...given, ...planCapacity(limits, config.conns, { ...given, embeddedServer: config.embedded }) };
  }
  return report;
}

export function doctorCommand(io: Io, done: (code: number) => void, sources?: () => LimitSources): Command {
  return new Command('doctor')
    .description("Check this machine's limits for load tests: open files, ephemeral ports, backlog, memory; say what to change.")
    .option('--json', 'machine output (JSON) on stdout')
    .option('--conns <n>', 'also plan N connections: workers and source addresses needed (exit 1 if they do not fit)')
    .option('--workers <n>', 'worker processes the planned run would use (default: 1)')
    .option('--addresses <n>', 'source addresses 127.0.0.1-127.0.0.N the planned run would use (default: 1; spread line: 8)')
    .option('--embedded', 'the planned run starts its own notify serve (notify swarm without --url): it must hold every connection too')
    .addHelpText(
      'after',
      `
Examples:
  $ notify doctor                       # table of limits, verdicts and what to change
  $ notify doctor --conns 100000        # can this machine open 100k connections? with which flags?
  $ notify doctor --conns 100000 --workers 6 --addresses 4   # ... and with these?
  $ notify doctor --conns 1500 --embedded   # can notify swarm --conns 1500 (no --url) run here?
  $ notify doctor --json | jq .connectionsPerProcess

Limits are read from /proc on Linux; elsewhere the table says what could not be read.`,
    )
    .action((raw: RawDoctorOptions) => {
      const config = resolveDoctorOptions(raw);
      const report = doctorReport(config, readLimits(sources?.()));
      if (config.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else io.stdout.write(renderDoctor(report, io.color));
      done(report.plan && !report.plan.fits ? ExitCode.runtime : ExitCode.ok);
    });
}

export function renderDoctor(report: DoctorReport, color: boolean): string {
  const c = new Chalk({ level: color ? 1 : 0 });
  const paint: Record<Verdict, (s: string) => string> = { ok: c.green, limit: c.yellow, warn: c.red, unknown: c.gray };
  const table = new Table({
    head: ['check', 'value', 'verdict', 'what to change'],
    style: color ? { head: ['bold'], compact: true } : { head: [], border: [], compact: true },
    colWidths: [null, null, null, 60],
    wordWrap: true,
  });
  for (const r of report.checks) table.push([r.check, r.value, paint[r.verdict](r.verdict), r.advice]);
  let out = `notify doctor: ${report.limits.platform}, Node v${report.limits.nodeVersion}\n${table.toString()}\n`;
  const { plan } = report;
  if (plan) {
    out +=
      `\nplan for ${plan.conns} connections with ${plan.workers} worker(s) and ${plan.addresses} source address(es): ` +
      `${plan.fits ? c.green('fits') : c.red('does not fit')} (needs ${plan.workersNeeded} worker(s), ${plan.addressesNeeded} source address(es))\n`;
    for (const p of plan.problems) out += `  - ${p}\n`;
  }
  const notes = plan ? plan.notes : report.limits.unreadable.map((u) => `could not read ${u}`);
  for (const n of notes) out += `  note: ${n}\n`;
  return out;
}
