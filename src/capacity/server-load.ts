/**
 * The server side of the self-check: each server's own load over the run (self-check.ts judges which side ran out of
 * CPU from it). A target that exposes Prometheus metrics (notify serve's /metrics: prom-client's default
 * process_cpu_seconds_total and nodejs_eventloop_lag_p99_seconds, with or without a prefix) is scraped at the start,
 * every few seconds and at the end; one that does not is "not measured".
 */
import { request } from 'undici';
import type { LiveServerSide } from '../metrics/snapshot.js';
import { SERVER_SATURATION } from './self-check.js';

const SAMPLE_EVERY_MS = 5000;
const SCRAPE_TIMEOUT_MS = 2000;

/** One server's load over the run. `cpuMean`/`cpuMax` are shares of one core (over the run, worst interval). */
export interface ServerLoad {
  url: string;
  samples: number;
  cpuMean: number;
  cpuMax: number;
  eldP99Ms: number;
  saturated: boolean;
}

/** The figures one scrape gives; a metric the text lacks is undefined. */
export function parseProcessMetrics(text: string): { cpuSeconds?: number; eldP99Ms?: number } {
  const value = (name: string): number | undefined => {
    const m = new RegExp(`^(?:\\w+_)?${name}(?:\\{[^}]*\\})? ([0-9.eE+-]+)`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  const lag = value('nodejs_eventloop_lag_p99_seconds');
  return { cpuSeconds: value('process_cpu_seconds_total'), eldP99Ms: lag === undefined ? undefined : lag * 1000 };
}

interface Sample {
  at: number;
  cpuSeconds: number;
  eldP99Ms: number;
}

async function scrape(metricsUrl: string): Promise<Sample | undefined> {
  try {
    const res = await request(metricsUrl, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    const text = await res.body.text();
    if (res.statusCode !== 200) return undefined;
    const { cpuSeconds, eldP99Ms } = parseProcessMetrics(text);
    return cpuSeconds === undefined ? undefined : { at: performance.now(), cpuSeconds, eldP99Ms: eldP99Ms ?? 0 };
  } catch {
    return undefined;
  }
}

/** Loads from each server's samples; a server with fewer than two is not measured (absent). */
export function loadOf(url: string, samples: readonly Sample[]): ServerLoad | undefined {
  if (samples.length < 2) return undefined;
  const first = samples[0]!;
  const last = samples[samples.length - 1]!;
  let cpuMax = 0;
  for (let i = 1; i < samples.length; i++) {
    const dt = (samples[i]!.at - samples[i - 1]!.at) / 1000;
    if (dt > 0) cpuMax = Math.max(cpuMax, (samples[i]!.cpuSeconds - samples[i - 1]!.cpuSeconds) / dt);
  }
  const span = (last.at - first.at) / 1000;
  const cpuMean = span > 0 ? (last.cpuSeconds - first.cpuSeconds) / span : 0;
  const eldP99Ms = Math.max(...samples.map((s) => s.eldP99Ms));
  const saturated = cpuMax > SERVER_SATURATION.cpu || eldP99Ms > SERVER_SATURATION.eldP99Ms;
  return { url, samples: samples.length, cpuMean, cpuMax, eldP99Ms, saturated };
}

/**
 * Scrapes each URL's /metrics from `start()` (before the ramp) until `stop()` (after the drain); `live()` is what the
 * dashboard and the status line show. The timer is unref'd and ends itself once no server answers (a run that failed midway).
 */
export class ServerSampler {
  private readonly samples: Sample[][];
  private timer: NodeJS.Timeout | undefined;
  private pending: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Set once the first scrape of every URL has answered or failed. */
  private firstDone = false;

  constructor(private readonly urls: readonly string[]) {
    this.samples = urls.map(() => []);
  }

  /** Starts sampling without waiting for the first answers: a slow /metrics must not delay the run's start. */
  static started(urls: readonly string[]): ServerSampler {
    const sampler = new ServerSampler(urls);
    sampler.start();
    return sampler;
  }

  private sampleAll(): Promise<void> {
    this.pending = Promise.all(
      this.urls.map(async (u, i) => {
        const s = await scrape(u.replace(/\/$/, '') + '/metrics');
        if (s) this.samples[i]!.push(s);
        return s !== undefined;
      }),
    ).then((answered) => {
      this.firstDone = true;
      if (!answered.includes(true)) clearInterval(this.timer);
    });
    return this.pending;
  }

  private start(): void {
    void this.sampleAll().then(() => {
      // Servers without metrics on the first scrape are not scraped again: nothing to measure there.
      if (this.stopped || !this.measured()) return;
      this.timer = setInterval(() => void this.sampleAll(), SAMPLE_EVERY_MS);
      this.timer.unref();
    });
  }

  private measured(): boolean {
    return this.samples.some((s) => s.length > 0);
  }

  /**
   * The server side as the live view shows it: each measured server's last scrape interval and its worst so far, or
   * why there is nothing to show yet (fewer than two scrapes) or at all (no URL exposed the metrics).
   */
  live(): LiveServerSide {
    const servers = this.urls.flatMap((url, i) => {
      const s = this.samples[i]!;
      const load = loadOf(url, s);
      if (!load) return [];
      const cpu = loadOf(url, s.slice(-2))!.cpuMax;
      const eldP99Ms = s[s.length - 1]!.eldP99Ms;
      const saturated = cpu > SERVER_SATURATION.cpu || eldP99Ms > SERVER_SATURATION.eldP99Ms;
      return [{ url, cpu, cpuMax: load.cpuMax, eldP99Ms, saturated }];
    });
    if (servers.length > 0) return { state: 'measured', servers };
    return { state: this.firstDone && !this.measured() ? 'not-measured' : 'measuring', servers };
  }

  /** The loads over the run so far (undefined: not measured). */
  private loads(): ServerLoad[] | undefined {
    const loads = this.urls.map((u, i) => loadOf(u, this.samples[i]!)).filter((l): l is ServerLoad => l !== undefined);
    return loads.length > 0 ? loads : undefined;
  }

  async stop(): Promise<ServerLoad[] | undefined> {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.pending;
    if (this.measured()) await this.sampleAll();
    return this.loads();
  }
}
