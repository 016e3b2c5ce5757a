/**
 * Prometheus metrics of the gateway, on a registry of its own (several gateways can live in one process in tests).
 * Hot-path counts are plain numbers added up per fan-out and pushed to prom-client once per fan-out, not per write.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { SERVE_TRANSPORTS, TRANSPORT_INDEX, type ServeTransport } from '../protocol/transports.js';

/**
 * How often the event-loop delay (`notify_nodejs_eventloop_lag_*`) is sampled. prom-client's default, 10 ms, wakes
 * the loop 100 times a second: 10-14 ms of CPU a second for a gateway with nothing to do, 2 ms at 100 ms
 * (BENCHMARKS.md, "publish door"). A loop held up for longer than this still delays the sample due meanwhile.
 */
const LOOP_DELAY_SAMPLE_MS = 100;

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connectionsOpened: Counter<'transport'>;
  readonly connectionsRejected: Counter<'reason'>;
  readonly published: Counter<'stream'>;
  readonly delivered: Counter<'transport'>;
  readonly replayed: Counter<'transport'>;
  readonly resets: Counter<'reason'>;
  readonly slowConsumerCloses: Counter<'transport'>;
  readonly bufferTotalCloses: Counter<'transport'>;
  readonly publishToWrite: Histogram;
  readonly httpErrors: Counter<'code'>;
  readonly tcpConnections: Counter;
  readonly http2Sessions: Counter;
  readonly http2SessionsOpen: Gauge;
  /** Subscriptions opened per transport (SERVE_TRANSPORTS order) since connectionsOpened last took them. */
  private readonly openedSince = [0, 0, 0];

  constructor(openConnections: () => Record<ServeTransport, number>, bufferedBytes: () => number = () => 0) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'notify_', eventLoopMonitoringPrecision: LOOP_DELAY_SAMPLE_MS });
    new Gauge({
      name: 'notify_connections',
      help: 'Live subscriber connections (held long-polls included)',
      labelNames: ['transport'],
      registers,
      collect() {
        for (const [transport, n] of Object.entries(openConnections())) this.set({ transport }, n);
      },
    });
    const openedSince = this.openedSince;
    // Counted as plain numbers per subscription (`opened`), handed to prom-client when it is read.
    this.connectionsOpened = new Counter({
      name: 'notify_connections_opened_total',
      help: 'Subscriptions opened',
      labelNames: ['transport'],
      registers,
      collect() {
        for (let i = 0; i < openedSince.length; i++) {
          if (openedSince[i] === 0) continue;
          this.inc({ transport: SERVE_TRANSPORTS[i]! }, openedSince[i]);
          openedSince[i] = 0;
        }
      },
    });
    this.connectionsRejected = new Counter({
      name: 'notify_connections_rejected_total',
      help: 'Subscriptions refused (max_conns, draining, auth)',
      labelNames: ['reason'],
      registers,
    });
    this.published = new Counter({ name: 'notify_published_total', help: 'Events accepted by /publish', labelNames: ['stream'], registers });
    this.delivered = new Counter({
      name: 'notify_delivered_total',
      help: 'Events written to subscriber connections (live)',
      labelNames: ['transport'],
      registers,
    });
    this.replayed = new Counter({ name: 'notify_replayed_total', help: 'Events sent from history on resume', labelNames: ['transport'], registers });
    this.resets = new Counter({ name: 'notify_resets_total', help: 'Resumes that could not be served from history', labelNames: ['reason'], registers });
    this.slowConsumerCloses = new Counter({
      name: 'notify_slow_consumer_closes_total',
      help: 'Connections closed as slow consumers (--max-buffer or --max-buffer-total)',
      labelNames: ['transport'],
      registers,
    });
    this.bufferTotalCloses = new Counter({
      name: 'notify_buffer_total_closes_total',
      help: 'Slow consumers cut because all connections together passed --max-buffer-total (also in slow_consumer_closes)',
      labelNames: ['transport'],
      registers,
    });
    new Gauge({
      name: 'notify_buffered_bytes',
      help: 'Bytes waiting to be sent to subscribers, all connections together (held to --max-buffer-total)',
      registers,
      collect() {
        this.set(bufferedBytes());
      },
    });
    this.publishToWrite = new Histogram({
      name: 'notify_publish_to_write_seconds',
      help: 'From publish accepted to the event written to the last live connection it goes to',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.httpErrors = new Counter({ name: 'notify_http_errors_total', help: 'Requests answered with an error', labelNames: ['code'], registers });
    // Subscribers are counted per stream (notify_connections); these say how many sockets carry them.
    this.tcpConnections = new Counter({ name: 'notify_tcp_connections_total', help: 'TCP connections accepted (any HTTP version)', registers });
    this.http2Sessions = new Counter({ name: 'notify_http2_sessions_total', help: 'HTTP/2 sessions begun (TLS h2 or h2c)', registers });
    this.http2SessionsOpen = new Gauge({ name: 'notify_http2_sessions', help: 'HTTP/2 sessions open now', registers });
  }

  /** A subscription opened (notify_connections_opened_total). */
  opened(transport: ServeTransport): void {
    this.openedSince[TRANSPORT_INDEX[transport]]!++;
  }
}
