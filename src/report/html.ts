/**
 * The HTML report: one self-contained file (uPlot's JS and CSS inlined, data in a JSON island), so it opens from a
 * CI artifact with no network. Charts: latency by percentile from the decoded HDR histograms, and the per-second
 * timeline of throughput, latency and connections. Tables: per transport, storms, errors, thresholds, config.
 */
import { phaseNotes } from './summary-table.js';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { type TransportSummary } from '../metrics/summary.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import { formatMs as ms, formatPercent as pct, formatPercentWhole, formatPerSec, formatValue } from '../metrics/format.js';
import { percentileDistribution } from './distribution.js';
import { HTML_CLIENT_SCRIPT } from './html-script.js';
import { normalizeTimeline } from '../result/merge.js';
import type { ResultFile } from '../result/schema.js';

const require = createRequire(import.meta.url);
let uplotAssets: { js: string; css: string } | undefined;

/** uPlot's minified build and stylesheet from node_modules, read once. */
function uplot(): { js: string; css: string } {
  uplotAssets ??= {
    js: readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8'),
    css: readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8'),
  };
  return uplotAssets;
}

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESC[c]!);

/** JSON safe inside a <script> element: no `</script>`, no `<!--`, no line separators that end a JS string. */
const scriptJson = (v: unknown): string =>
  JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');

function table(head: string[], rows: (string | number)[][], cls = ''): string {
  const th = head.map((h) => `<th>${escapeHtml(h)}</th>`).join('');
  const tr = rows
    .map((r) => `<tr>${r.map((c, i) => (i === 0 ? `<th scope="row">${escapeHtml(c)}</th>` : `<td>${escapeHtml(c)}</td>`)).join('')}</tr>`)
    .join('\n');
  return `<table class="${cls}"><thead><tr>${th}</tr></thead><tbody>\n${tr}\n</tbody></table>`;
}

function scopes(result: ResultFile): [string, TransportSummary][] {
  const out: [string, TransportSummary][] = [];
  for (const name of TRANSPORT_NAMES) {
    const s = result.summary.transports[name];
    if (s) out.push([name, s]);
  }
  out.push(['total', result.summary.total]);
  return out;
}

function transportTables(result: ResultFile): string {
  const rows = scopes(result);
  const dist = (d: TransportSummary['latency']) =>
    d.count === 0 ? ['-', '-', '-', '-', '-', '-', '-'] : [ms(d.min), ms(d.p50), ms(d.p90), ms(d.p99), ms(d.p999), ms(d.max), ms(d.mean)];
  const distHead = ['min', 'p50', 'p90', 'p99', 'p99.9', 'max', 'mean'];
  return [
    '<h3>Connections</h3>',
    table(
      ['', 'target', 'peak open', 'failed', 'reconnects'],
      rows.map(([n, s]) => [n, s.connections.target, s.connections.peakOpen, s.connections.failed, s.connections.reconnects]),
    ),
    '<h3>Events</h3>',
    table(
      ['', 'published', 'expected', 'delivered', 'lost', 'duplicated', 'out-of-order', 'recovered', 'misrouted', 'delivered/s'],
      rows.map(([n, s]) => {
        const e = s.events;
        return [
          n,
          e.published,
          e.expected,
          `${e.delivered} (${pct(e.deliveredRate)})`,
          `${e.lost} (${pct(e.lostRate)})`,
          `${e.duplicated} (${pct(e.duplicatedRate)})`,
          `${e.outOfOrder} (${pct(e.outOfOrderRate)})`,
          `${e.recovered} (${pct(e.recoveredRate)})`,
          String(e.misrouted),
          formatPerSec(s.deliveredPerSec, false),
        ];
      }),
    ),
    '<h3>Latency (receive time - intended send time)</h3>',
    table(
      ['', 'count', ...distHead],
      rows.map(([n, s]) => [n, s.latency.count, ...dist(s.latency)]),
    ),
    '<h3>Connect time</h3>',
    table(
      ['', 'count', ...distHead],
      rows.map(([n, s]) => [n, s.connect.count, ...dist(s.connect)]),
    ),
    '<h3>Reconnect time</h3>',
    table(
      ['', 'count', ...distHead],
      rows.map(([n, s]) => [n, s.reconnect.count, ...dist(s.reconnect)]),
    ),
  ].join('\n');
}

function thresholdTable(result: ResultFile): string {
  if (result.thresholds.length === 0) return '<p class="muted">No thresholds were set (<code>--threshold</code>).</p>';
  return table(
    ['threshold', 'limit', 'actual', 'verdict'],
    result.thresholds.map((t) => [
      t.expr,
      `${t.op} ${formatValue(t.kind, t.value)}`,
      t.pending ?? t.noData ?? formatValue(t.kind, t.actual),
      t.pending ? 'PENDING' : t.ok ? 'PASS' : 'FAIL',
    ]),
    'thresholds',
  );
}

function phasesSection(result: ResultFile): string {
  if (!result.phases?.length) return '';
  return `<h2>Scenario phases</h2>\n${table(
    ['phase', 'from', 'to', 'expected', 'delivered', 'lost', 'reconnects', 'latency p50', 'p99', 'notes'],
    result.phases.map((p, i) => [
      `${i + 1} ${p.kind}`,
      ms(p.startMs),
      ms(p.endMs),
      p.events.expected,
      p.events.delivered,
      p.events.lost,
      p.reconnects,
      p.latency.count ? ms(p.latency.p50) : '-',
      p.latency.count ? ms(p.latency.p99) : '-',
      phaseNotes(p) || '-',
    ]),
    'phases',
  )}`;
}

function stormsSection(result: ResultFile): string {
  if (result.storms.length === 0) return '';
  const t = (v: number | null) => (v === null ? 'never' : ms(v));
  return `<h2>Reconnect storms</h2>\n${table(
    ['storm', 'at', 'share', 'aborted', 'back', '99% back in', '100% back in', 'failed attempts'],
    result.storms.map((s, i) => [
      `#${i + 1}`,
      ms(s.atMs),
      `${Math.round(s.share * 100)}%`,
      s.aborted,
      s.back,
      t(s.back99Ms),
      t(s.back100Ms),
      Object.entries(s.failures)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || '-',
    ]),
  )}`;
}

function errorsSection(result: ResultFile): string {
  const errs = Object.entries(result.summary.total.errors).sort((a, b) => b[1] - a[1]);
  const pub = Object.entries(result.publisher.failures).sort((a, b) => b[1] - a[1]);
  if (errs.length === 0 && pub.length === 0) return '<h2>Errors</h2><p class="muted">None.</p>';
  const used = TRANSPORT_NAMES.filter((n) => result.summary.transports[n]);
  const causes = [...new Set([...errs, ...pub].map(([k]) => k))];
  return `<h2>Errors</h2>\n${table(
    ['cause', ...used.map((n) => `subscribers (${n})`), 'publisher'],
    causes.map((k) => [k, ...used.map((n) => result.summary.transports[n]!.errors[k] ?? 0), result.publisher.failures[k] ?? 0]),
  )}`;
}

function configSection(result: ResultFile): string {
  const rows = Object.entries(result.config)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]);
  return table(['setting', 'value'], rows, 'config');
}

/** The verdict on both sides (older files have none), the workers' figures, and each --url's own load. */
function selfCheckSection(result: ResultFile): string {
  const sc = result.selfCheck;
  const rows = sc.workers.map((s, i) => [
    `worker ${i + 1}`,
    ms(s.eldP99Ms),
    ms(s.eldMaxMs),
    formatPercentWhole(s.cpuMean),
    formatPercentWhole(s.cpuMax),
    `${(s.rssBytes / 2 ** 20).toFixed(0)} MiB`,
  ]);
  const verdict = sc.bottleneck
    ? `<p class="${sc.warning ? 'warning' : 'muted'}">Bottleneck: <strong>${escapeHtml(sc.bottleneck)}</strong>${sc.sides ? ` · ${escapeHtml(sc.sides)}` : ''}</p>`
    : '';
  const servers = sc.servers?.length
    ? table(
        ['server', 'scrapes', 'CPU mean', 'CPU worst interval', 'event-loop lag p99', 'saturated'],
        sc.servers.map((s) => [
          s.url,
          s.samples,
          formatPercentWhole(s.cpuMean),
          formatPercentWhole(s.cpuMax),
          ms(s.eldP99Ms),
          s.saturated ? 'SATURATED' : 'no',
        ]),
        'servers',
      )
    : sc.bottleneck
      ? '<p class="muted">Server side not measured: no --url exposed Prometheus <code>/metrics</code> with <code>process_cpu_seconds_total</code>.</p>'
      : '';
  const workers = table(['', 'event-loop delay p99', 'max', 'CPU mean', 'CPU max', 'RSS'], rows, 'workers');
  return [verdict, '<h3>Client (swarm workers)</h3>', workers, ...(servers ? ['<h3>Servers</h3>', servers] : [])].join('\n');
}

/** The report's own look, next to uPlot's stylesheet. */
const PAGE_CSS = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #111827; margin: 0; padding: 24px; max-width: 1180px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #e5e7eb; padding-bottom: 4px; } h3 { font-size: 15px; margin: 16px 0 6px; }
.muted { color: #6b7280; } code { font-family: ui-monospace, monospace; font-size: 13px; }
table { border-collapse: collapse; margin: 4px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #e5e7eb; padding: 4px 8px; text-align: right; } thead th { background: #f9fafb; } tbody th { text-align: left; font-weight: 600; }
table.config td { text-align: left; font-family: ui-monospace, monospace; font-size: 12px; word-break: break-all; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 14px; min-width: 140px; }
.card .label { color: #6b7280; font-size: 12px; } .card .value { font-size: 20px; font-weight: 600; } .card .sub { color: #6b7280; font-size: 12px; }
.verdict { padding: 8px 12px; border-radius: 6px; font-weight: 600; } .pass { background: #dcfce7; color: #166534; } .fail { background: #fee2e2; color: #991b1b; }
.warning { background: #fef3c7; color: #92400e; padding: 8px 12px; border-radius: 6px; }
.chart { margin: 8px 0 20px; min-height: 40px; } .chart.empty { color: #6b7280; border: 1px dashed #d1d5db; padding: 16px; }
`;

/** The whole report as one HTML document. */
export function renderHtml(result: ResultFile, title = `notify swarm ${result.run}`): string {
  const assets = uplot();
  const distribution: Record<string, ReturnType<typeof percentileDistribution>> = {};
  for (const [name] of scopes(result)) {
    const h = result.histograms[name as keyof ResultFile['histograms']];
    if (h) distribution[name] = percentileDistribution(h.latency, `histograms.${name}.latency`);
  }
  // A scenario's phases, marked on the timelines where each began (seconds, as the timeline counts them).
  const phases = (result.phases ?? []).map((p, i) => ({ label: `${i + 1} ${p.kind}`, t: p.startMs / 1000 }));
  const data = { distribution, timeline: normalizeTimeline(result.timeline), phases };
  const total = result.summary.total;
  const failed = result.thresholds.filter((t) => !t.ok);
  const verdict =
    result.thresholds.length === 0
      ? ''
      : failed.length === 0
        ? `<p class="verdict pass">All ${result.thresholds.length} thresholds passed.</p>`
        : `<p class="verdict fail">${failed.length} of ${result.thresholds.length} thresholds crossed: ${failed.map((t) => `<code>${escapeHtml(t.expr)}</code>`).join(', ')}</p>`;
  const card = (label: string, value: string, sub = '') =>
    `<div class="card"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(value)}</div><div class="sub">${escapeHtml(sub)}</div></div>`;
  const e = total.events;
  const warnings = [
    result.selfCheck.warning ? `<p class="warning">Self-check: ${escapeHtml(result.selfCheck.warning)}</p>` : '',
    result.stoppedEarly ? `<p class="warning">Stopped early: ${escapeHtml(result.stoppedEarly)}</p>` : '',
    ...(result.problems ?? []).map((p) => `<p class="verdict fail">Run failed: ${escapeHtml(p.message)}</p>`),
  ].join('');
  const merged = result.merged
    ? `<p class="muted">Merged from ${result.merged.from.map((f) => `${escapeHtml(f.file)} (run ${escapeHtml(f.run)}, ${f.conns} conns)`).join(', ')}. ${result.merged.notes.map(escapeHtml).join('; ')}.</p>`
    : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${assets.css}</style>
<style>${PAGE_CSS}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p class="muted">${escapeHtml(result.startedAt)} - ${escapeHtml(result.endedAt)} · target ${escapeHtml(result.target.urls.join(', ') || '-')}${result.target.embedded ? ' (embedded server)' : ''} · ${escapeHtml(result.tool.name)} ${escapeHtml(result.tool.version)}</p>
${merged}
${verdict}
${warnings}
<div class="cards">
${card('connections', `${total.connections.peakOpen} / ${total.connections.target}`, `peak open / target; ${total.connections.failed} failed`)}
${card('delivered', pct(e.deliveredRate), `${e.delivered} of ${e.expected} expected`)}
${card('lost', String(e.lost), pct(e.lostRate))}
${card('duplicated / out-of-order', `${e.duplicated} / ${e.outOfOrder}`, `recovered ${e.recovered}`)}
${card('misrouted', String(e.misrouted), e.misrouted ? 'probes delivered to the wrong user' : 'no probe reached the wrong user')}
${card('latency p50 / p99', total.latency.count ? `${ms(total.latency.p50)} / ${ms(total.latency.p99)}` : '-', total.latency.count ? `max ${ms(total.latency.max)}` : 'no latency recorded')}
${card('delivered/s', formatPerSec(total.deliveredPerSec, false), `${e.published} probes published`)}
${card('reconnects', String(total.connections.reconnects), total.reconnect.count ? `p99 ${ms(total.reconnect.p99)}` : '')}
</div>
<h2>Latency distribution</h2>
<div class="chart" id="chart-latency-distribution" data-chart="latency-distribution"></div>
<h2>Timeline</h2>
<div class="chart" id="chart-throughput" data-chart="throughput"></div>
<div class="chart" id="chart-latency-timeline" data-chart="latency-timeline"></div>
<div class="chart" id="chart-connections" data-chart="connections"></div>
<h2>Thresholds</h2>
${thresholdTable(result)}
<h2>Per transport</h2>
${transportTables(result)}
${phasesSection(result)}
${stormsSection(result)}
${errorsSection(result)}
<h2>Publisher</h2>
${table(['', 'sent', 'accepted', '202 p50', 'p99', 'max'], [['probes', result.publisher.sent, result.publisher.accepted, ms(result.publisher.ack.p50), ms(result.publisher.ack.p99), ms(result.publisher.ack.max)]])}
<h2>Self-check</h2>
${selfCheckSection(result)}
<h2>Config</h2>
${configSection(result)}
<script>${assets.js}</script>
<script type="application/json" id="notify-data">${scriptJson(data)}</script>
<script>${HTML_CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
