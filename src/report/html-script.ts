/**
 * The browser side of the HTML report, as plain JavaScript text (the report inlines it next to uPlot). It reads the
 * JSON island `#notify-data` and draws the charts with the global `uPlot`; a chart without data says so instead.
 */
export const HTML_CLIENT_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('notify-data').textContent);
  var COLORS = { total: '#1f2937', sse: '#2563eb', ws: '#16a34a', poll: '#d97706', socketio: '#7c3aed' };
  var charts = [];

  function width(el) { return Math.max(320, Math.min(1100, el.clientWidth || 900)); }
  function fmtMs(v) { return v == null ? '-' : v >= 1000 ? (v / 1000).toFixed(2) + ' s' : v >= 10 ? v.toFixed(1) + ' ms' : v.toFixed(3) + ' ms'; }
  function fmtPct(x) {
    var p = 100 * (1 - 1 / x);
    var s = p.toFixed(p < 90 ? 0 : Math.min(5, Math.ceil(-Math.log10(100 - p)) + 1));
    return s.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '') + '%';
  }
  function empty(el, why) { el.classList.add('empty'); el.textContent = why; }
  // A dashed line and the phase's name where each scenario phase began (timeline charts only).
  function markPhases(u) {
    var ctx = u.ctx;
    ctx.save();
    ctx.strokeStyle = '#9ca3af';
    ctx.fillStyle = '#4b5563';
    ctx.setLineDash([4, 4]);
    ctx.font = (11 * devicePixelRatio) + 'px sans-serif';
    var drawn = 0;
    (data.phases || []).forEach(function (p) {
      var x = u.valToPos(p.t, 'x', true);
      if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
      drawn++;
      ctx.beginPath();
      ctx.moveTo(x, u.bbox.top);
      ctx.lineTo(x, u.bbox.top + u.bbox.height);
      ctx.stroke();
      ctx.fillText(p.label, x + 3 * devicePixelRatio, u.bbox.top + 12 * devicePixelRatio);
    });
    ctx.restore();
    u.root.setAttribute('data-phase-marks', String(drawn));
  }
  function plot(id, opts, rows) {
    var el = document.getElementById(id);
    if (!el) return;
    if (!rows[0].length) return empty(el, 'no data');
    opts.width = width(el);
    opts.height = 260;
    charts.push({ el: el, chart: new uPlot(opts, rows, el) });
  }

  // Latency percentile distribution: one line per transport and the total.
  (function () {
    var d = data.distribution;
    var names = Object.keys(d).filter(function (n) { return d[n].points.length > 0; });
    if (!names.length) return empty(document.getElementById('chart-latency-distribution'), 'no latency recorded');
    var longest = names.reduce(function (a, n) { return d[n].points.length > d[a].points.length ? n : a; }, names[0]);
    var xs = d[longest].points.map(function (p) { return p.x; });
    var rows = [xs];
    var series = [{ label: 'percentile', value: function (u, v) { return v == null ? '-' : fmtPct(v); } }];
    names.forEach(function (n) {
      rows.push(xs.map(function (_, i) { var p = d[n].points[i]; return p ? p.ms : null; }));
      series.push({ label: n, stroke: COLORS[n] || '#6b7280', width: n === 'total' ? 2.5 : 1.5, value: function (u, v) { return fmtMs(v); } });
    });
    plot('chart-latency-distribution', {
      title: 'Latency by percentile (ms)',
      scales: { x: { time: false, distr: 3, log: 10 } },
      axes: [{
        label: 'percentile',
        // One tick per decade of 1/(1-p): 0%, 90%, 99%, 99.9% ...
        splits: function (u) { var out = []; for (var x = 1; x <= u.scales.x.max * 1.0001; x *= 10) out.push(x); return out; },
        values: function (u, vals) { return vals.map(fmtPct); },
      }, { label: 'ms', size: 60 }],
      series: series,
    }, rows);
  })();

  // Per-second timeline.
  var tl = data.timeline;
  var t = tl.map(function (p) { return p.t; });
  var perSec = { time: false };
  var phaseHooks = { draw: [markPhases] };
  var secondsAxis = { label: 'seconds since start', incrs: [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600] };
  plot('chart-throughput', {
    title: 'Events per second',
    hooks: phaseHooks,
    scales: { x: perSec },
    axes: [secondsAxis, { label: 'events/s', size: 70 }],
    series: [{ label: 's' }, { label: 'published/s', stroke: '#7c3aed', width: 1.5 }, { label: 'delivered/s', stroke: '#16a34a', width: 1.5 }],
  }, [t, tl.map(function (p) { return p.published; }), tl.map(function (p) { return p.delivered; })]);
  plot('chart-latency-timeline', {
    title: 'Latency per second (ms)',
    hooks: phaseHooks,
    scales: { x: perSec },
    axes: [secondsAxis, { label: 'ms', size: 60 }],
    series: [
      { label: 's' },
      { label: 'p50', stroke: '#2563eb', width: 1.5, value: function (u, v) { return fmtMs(v); } },
      { label: 'p99', stroke: '#dc2626', width: 1.5, value: function (u, v) { return fmtMs(v); } },
    ],
  }, [t, tl.map(function (p) { return p.delivered ? p.p50 : null; }), tl.map(function (p) { return p.delivered ? p.p99 : null; })]);
  plot('chart-connections', {
    title: 'Connections',
    hooks: phaseHooks,
    scales: { x: perSec, n: {} },
    axes: [secondsAxis, { label: 'open', size: 70 }, { side: 1, scale: 'n', label: 'per second', grid: { show: false }, size: 60 }],
    series: [
      { label: 's' },
      { label: 'open', stroke: '#1f2937', width: 2 },
      { label: 'reconnects/s', stroke: '#d97706', width: 1.5, scale: 'n' },
      { label: 'errors/s', stroke: '#dc2626', width: 1.5, scale: 'n' },
    ],
  }, [t, tl.map(function (p) { return p.open; }), tl.map(function (p, i) { return i === 0 ? p.reconnects : Math.max(0, p.reconnects - tl[i - 1].reconnects); }), tl.map(function (p) { return p.errors; })]);

  var pending = 0;
  window.addEventListener('resize', function () {
    clearTimeout(pending);
    pending = setTimeout(function () { charts.forEach(function (c) { c.chart.setSize({ width: width(c.el), height: 260 }); }); }, 100);
  });
  document.body.setAttribute('data-charts-ready', String(charts.length));
})();
`;
