import { describe, expect, it } from 'vitest';
import { judgeSides } from '../src/capacity/self-check.js';
import { loadOf, parseProcessMetrics, type ServerLoad } from '../src/capacity/server-load.js';

const idle = { eldP99Ms: 12, cpuMax: 0.4 };
const busy = { eldP99Ms: 180, cpuMax: 0.98 };
const server = (saturated: boolean): ServerLoad => ({
  url: 'http://127.0.0.1:1',
  samples: 5,
  cpuMean: saturated ? 0.97 : 0.3,
  cpuMax: saturated ? 1 : 0.35,
  eldP99Ms: saturated ? 120 : 11,
  saturated,
});

describe('which side ran out of CPU', () => {
  it('names the saturated worker, the saturated server, both, or neither', () => {
    expect(judgeSides([idle, busy], [server(false)]).bottleneck).toBe('client');
    expect(judgeSides([idle, busy], [server(false)]).text).toMatch(/client saturated: worker 2 \(loop p99 180\.0 ms, CPU 98% of a core\)/);
    const s = judgeSides([idle], [server(true)]);
    expect(s.bottleneck).toBe('server');
    expect(s.text).toMatch(/server saturated: http:\/\/127\.0\.0\.1:1 \(CPU 97% of a core on average, 100% at worst; loop p99 120\.0 ms\)/);
    expect(judgeSides([busy], [server(true)]).bottleneck).toBe('both');
    expect(judgeSides([idle], [server(false)]).bottleneck).toBe('neither');
  });

  it('says when a side lagged with little CPU of its own: the machine ran out of cores', () => {
    const lagging = { ...server(true), cpuMean: 0.09, cpuMax: 0.4, eldP99Ms: 2000 };
    expect(judgeSides([{ eldP99Ms: 3000, cpuMax: 0.2 }], [lagging]).text).toMatch(
      /worker 1 .*the machine ran out of cores.*server saturated: .*the machine ran out of cores/,
    );
  });

  it('says the server side was not measured when no target exposed metrics', () => {
    const s = judgeSides([idle], undefined);
    expect(s.bottleneck).toBe('unknown');
    expect(s.text).toMatch(/server side not measured/);
    expect(judgeSides([busy], undefined).bottleneck).toBe('client');
  });

  it('reads prom-client default metrics with or without a prefix, and judges samples', () => {
    const text = '# HELP x\nnotify_process_cpu_seconds_total 12.5\nnotify_nodejs_eventloop_lag_p99_seconds 0.0605\n';
    expect(parseProcessMetrics(text)).toEqual({ cpuSeconds: 12.5, eldP99Ms: 60.5 });
    expect(parseProcessMetrics('process_cpu_seconds_total 3\n').cpuSeconds).toBe(3);
    expect(parseProcessMetrics('other 1\n').cpuSeconds).toBeUndefined();
    const load = loadOf('u', [
      { at: 0, cpuSeconds: 10, eldP99Ms: 10 },
      { at: 5000, cpuSeconds: 14.75, eldP99Ms: 20 },
      { at: 10000, cpuSeconds: 15, eldP99Ms: 15 },
    ])!;
    expect(load.cpuMean).toBeCloseTo(0.5);
    expect(load.cpuMax).toBeCloseTo(0.95);
    expect(load.eldP99Ms).toBe(20);
    expect(load.saturated).toBe(true);
    expect(loadOf('u', [{ at: 0, cpuSeconds: 1, eldP99Ms: 1 }])).toBeUndefined();
  });
});
