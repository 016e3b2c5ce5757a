/**
 * The live view of `notify swarm` on a terminal (ink). Renders one SwarmSnapshot (about one a second): connections
 * with a ramp bar, throughput, latency of the last second and of the run, storms, errors, the self-check of the client
 * and of the servers, and sparklines of the timeline. Stateless: the controller (dashboard.ts) re-renders it with new props.
 *
 * Styling goes through a Chalk instance of its own, on when `color` is (NO_COLOR, non-TTY: off), rather than ink's
 * colour props, whose chalk decides from process.stdout and not from the stream the dashboard is drawn on.
 */
import { Box, Static, Text, useInput, useStdin } from 'ink';
import { Chalk, type ChalkInstance } from 'chalk';
import { createContext, useContext, type ReactNode } from 'react';
import type { DurationSummary } from '../metrics/histogram.js';
import type { EventCounts } from '../metrics/summary.js';
import type { LiveServerLoad, LiveServerSide, SwarmSnapshot } from '../metrics/snapshot.js';
import { SERVER_SATURATION } from '../capacity/self-check.js';
import { formatClock as clock, formatCompact as compact, formatMsLive as ms, formatPercentWhole } from '../metrics/format.js';
import { bar, sparkline, timeLeft, type PhasePlan } from './format.js';

/** Audit figures known only once the run has finished (after the drain). */
export type FinalFigures = Omit<EventCounts, 'published'>;

export interface DashboardProps {
  title: string;
  plan: PhasePlan;
  snapshot?: SwarmSnapshot;
  /** Progress notes (server started, storm fired ...), printed once above the live area. */
  notes: readonly string[];
  /** Set once the user asked to stop: why. */
  stopping?: string;
  final?: FinalFigures;
  color: boolean;
  /** Terminal width in columns. */
  width: number;
  /** True when keypresses are read (stdin is a raw-mode TTY): `q` works; otherwise only Ctrl-C (SIGINT) does. */
  keys: boolean;
  onStop: (reason: string) => void;
}

const LABEL = 13;

const StyleContext = createContext<ChalkInstance>(new Chalk({ level: 0 }));

function Row({ label, children }: { label: string; children: ReactNode }) {
  const c = useContext(StyleContext);
  return (
    <Box>
      <Box width={LABEL} flexShrink={0}>
        <Text>{c.bold(label)}</Text>
      </Box>
      <Box flexGrow={1}>
        <Text wrap="truncate-end">{children}</Text>
      </Box>
    </Box>
  );
}

function Keys({ onStop }: { onStop: (reason: string) => void }) {
  const { isRawModeSupported } = useStdin();
  useInput(
    (input, key) => {
      if (input === 'q' || input === 'Q') onStop('q pressed');
      else if (key.ctrl && input === 'c') onStop('Ctrl-C pressed');
    },
    { isActive: isRawModeSupported === true },
  );
  return null;
}

const dist = (d: DurationSummary) => (d.count === 0 ? 'no probe received' : `p50 ${ms(d.p50)}  p90 ${ms(d.p90)}  p99 ${ms(d.p99)}  max ${ms(d.max)}`);

export function Dashboard(props: DashboardProps) {
  const { snapshot: s, plan, final } = props;
  const c = new Chalk({ level: props.color ? 1 : 0 });
  const sparkWidth = Math.max(10, Math.min(60, props.width - LABEL - 16));
  const notes = props.notes.map((text, i) => ({ key: i, text }));
  const left = s ? timeLeft(s.phase, s.elapsedMs, s.totalMs, plan) : undefined;
  let status = 'starting ...';
  if (s && left) {
    status = c.bold[s.phase === 'done' ? 'green' : 'yellow'](s.phase);
    if (s.phase !== 'done') status += `  ${clock(left.phaseMs)} left in phase · ${clock(left.runMs)} left in run`;
  }
  return (
    <StyleContext.Provider value={c}>
      <Box flexDirection="column">
        <Static items={notes}>{(n) => <Text key={n.key}>{n.text}</Text>}</Static>
        <Keys onStop={props.onStop} />
        <Text wrap="truncate-end">{c.bold.cyan(props.title)}</Text>
        <Row label="phase">{status}</Row>
        {s ? <Body snapshot={s} final={final} sparkWidth={sparkWidth} plan={plan} /> : null}
        {final ? null : (
          <Text>
            {c.dim(
              props.stopping
                ? `stopping: ${props.stopping} (draining, then writing the result)`
                : `${props.keys ? 'q or Ctrl-C' : 'Ctrl-C'}: stop early (the result is still written)`,
            )}
          </Text>
        )}
      </Box>
    </StyleContext.Provider>
  );
}

/** The audit while the run goes: probes older than the grace period, and misrouted receipts as they come. */
function liveAudit(s: SwarmSnapshot, c: ChalkInstance): string {
  const a = s.audit;
  const bad = a.lost || a.duplicated || a.outOfOrder || s.misrouted;
  const text =
    `lost ${a.lost}  duplicated ${a.duplicated}  out-of-order ${a.outOfOrder}  recovered ${a.recovered}  misrouted ${s.misrouted}` +
    `  (of ${a.expected} owed, sent > ${a.graceMs / 1000}s ago; final after the drain)`;
  if (a.expected === 0 && !s.misrouted)
    return c.dim(`lost / duplicated / out-of-order / recovered / misrouted: counted once probes are ${a.graceMs / 1000} s old`);
  return bad ? c.red(text) : text;
}

/** A shard without the publisher's log: what it does know of the audit, and who settles the rest. */
function pendingAudit(s: SwarmSnapshot, why: string, final: FinalFigures | undefined): string {
  const dup = final?.duplicated ?? s.audit.duplicated;
  const ooo = final?.outOfOrder ?? s.audit.outOfOrder;
  return `duplicated ${dup}  out-of-order ${ooo}  misrouted ${final?.misrouted ?? s.misrouted}  (lost: ${why})`;
}

/**
 * The server side of the self-check: the busiest --url by its last scrape interval (CPU share of a core, the worst
 * interval so far, loop lag), or why there is nothing to show.
 */
function serverSide(side: LiveServerSide, c: ChalkInstance): string {
  if (side.state === 'measuring') return c.dim('measuring (each --url /metrics, every 5 s)');
  if (side.state === 'not-measured') return c.dim('not measured (no --url exposes Prometheus process_cpu_seconds_total)');
  const busiest = side.servers.reduce((a, b) => (b.cpu > a.cpu ? b : a));
  const others = side.servers.length > 1 ? `  (busiest of ${side.servers.length})` : '';
  const text = `event-loop p99 ${ms(busiest.eldP99Ms)}  CPU ${formatPercentWhole(busiest.cpu)} (worst ${formatPercentWhole(busiest.cpuMax)})  ${busiest.url}${others}`;
  return side.servers.some((b) => b.saturated) ? text + c.bold.red('  SATURATED') : text;
}

/** A saturated server in the warning: its figures, and whether it lagged for want of a core rather than of CPU time. */
function busyServer(b: LiveServerLoad): string {
  const starved = b.eldP99Ms > SERVER_SATURATION.eldP99Ms && b.cpu < SERVER_SATURATION.cpu / 2;
  return `${b.url} (CPU ${formatPercentWhole(b.cpu)}, loop p99 ${ms(b.eldP99Ms)}${starved ? ', lagging with little CPU of its own: the machine ran out of cores' : ''})`;
}

/** Both sides of the self-check: the client's busiest worker, the busiest server, and a warning for each saturated side. */
function SelfCheckRows({ selfCheck: sc }: { selfCheck: SwarmSnapshot['selfCheck'] }) {
  const c = useContext(StyleContext);
  const busyServers = sc.server?.servers.filter((b) => b.saturated) ?? [];
  return (
    <>
      <Row label="client">
        {`event-loop p99 ${ms(sc.eldP99Ms)}  CPU ${formatPercentWhole(sc.cpu)}`}
        {sc.saturated ? c.bold.red('  SATURATED') : ''}
      </Row>
      {sc.server ? <Row label="server">{serverSide(sc.server, c)}</Row> : null}
      {sc.saturated ? (
        // Wrapped, not truncated: this warning must stay readable on a narrow terminal.
        <Text wrap="wrap">
          {c.bold.red('WARNING: the swarm client is saturated; latency includes client-side delay (use more --workers or fewer --conns)')}
        </Text>
      ) : null}
      {busyServers.length > 0 ? (
        <Text wrap="wrap">
          {c.bold.red(`WARNING: the server is saturated: ${busyServers.map(busyServer).join(', ')}; latency includes the server-side delay`)}
        </Text>
      ) : null}
    </>
  );
}

function Body({ snapshot: s, sparkWidth, final, plan }: { snapshot: SwarmSnapshot; sparkWidth: number; final?: FinalFigures; plan: PhasePlan }) {
  const c = useContext(StyleContext);
  const n = s.conns;
  const ramping = s.phase === 'ramp' || s.phase === 'starting';
  const errors = Object.entries(s.errors).sort((a, b) => b[1] - a[1]);
  const stormsFired = s.storms.filter((st) => st.aborted > 0 || st.atMs <= s.elapsedMs);
  const tl = s.timeline;
  const last = tl.at(-1);
  const bad = final && (final.lost || final.duplicated || final.outOfOrder || final.misrouted);
  return (
    <Box flexDirection="column">
      <Row label="connections">
        {(ramping ? c.yellow : c.green)(bar(n.target ? n.open / n.target : 0, 20))}
        {` ${n.open}/${n.target} open${ramping ? ' (ramping)' : ''}  connecting ${n.connecting}  reconnecting ${n.reconnecting}  `}
        {n.failed ? c.red(`failed ${n.failed}`) : `failed ${n.failed}`}
      </Row>
      <Row label="events/s">
        {`published ${compact(s.publishedPerSec)}/s  delivered ${compact(s.deliveredPerSec)}/s  (total published ${compact(s.published)}, delivered ${compact(s.delivered)})`}
      </Row>
      <Row label="latency 1s">{dist(s.latencyLast)}</Row>
      <Row label="latency all">{dist(s.latencyAll)}</Row>
      <Row label="audit">
        {plan.auditPending
          ? pendingAudit(s, plan.auditPending, final)
          : final
            ? (bad ? c.red : c.green)(
                `lost ${final.lost}  duplicated ${final.duplicated}  out-of-order ${final.outOfOrder}  recovered ${final.recovered}  misrouted ${final.misrouted}  (of ${final.expected} expected; final)`,
              )
            : liveAudit(s, c)}
      </Row>
      <Row label="reconnects">
        {`${n.reconnects}`}
        {stormsFired.map((st, i) => `  storm ${i + 1} (${Math.round(st.share * 100)}% @ ${clock(st.atMs)}): back ${st.back}/${st.aborted}`).join('')}
      </Row>
      <Row label="errors">
        {errors.length === 0
          ? 'none'
          : c.red(
              errors
                .slice(0, 6)
                .map(([k, v]) => `${k} ${v}`)
                .join('  ') + (errors.length > 6 ? `  +${errors.length - 6} more` : ''),
            )}
      </Row>
      <SelfCheckRows selfCheck={s.selfCheck} />
      <Row label="delivered/s">
        {c.green(
          sparkline(
            tl.map((p) => p.delivered),
            sparkWidth,
          ),
        )}
        {` ${compact(last?.delivered ?? 0)}/s`}
      </Row>
      <Row label="p99">
        {c.magenta(
          sparkline(
            tl.map((p) => p.p99),
            sparkWidth,
          ),
        )}
        {` ${last?.delivered ? ms(last.p99) : '-'}`}
      </Row>
    </Box>
  );
}
