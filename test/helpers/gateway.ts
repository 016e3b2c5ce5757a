/** A real gateway in this process on 127.0.0.1 port 0, configured through the same resolver as the CLI flags. */
import { resolveServeOptions, type RawServeOptions, type ServeConfig } from '../../src/server/config.js';
import { startGateway, type Gateway } from '../../src/server/gateway.js';
import { silentLogger } from '../../src/util/log.js';
import { onCleanup } from './lifecycle.js';

export interface TestGateway extends Gateway {
  readonly config: ServeConfig;
  /** ws://host:port */
  readonly wsUrl: string;
  /** The history epoch: the first part of every cursor this gateway hands out. */
  readonly epoch: string;
  cursor(userSeq: number, broadcastSeq: number): string;
}

/**
 * Starts a gateway with flag-style overrides (`{batch: '200ms', maxBuffer: '4kb'}`) and, for what has no flag,
 * config overrides; it is shut down by `runCleanup`.
 */
export async function startTestGateway(raw: RawServeOptions = {}, overrides: Partial<ServeConfig> = {}): Promise<TestGateway> {
  const config: ServeConfig = { ...resolveServeOptions({ port: '0', ...raw }, {}), shutdownGraceMs: 1000, ...overrides };
  const gw = await startGateway(config, silentLogger);
  onCleanup(() => gw.shutdown());
  const epoch = gw.broker.epoch();
  return {
    url: gw.url,
    port: gw.port,
    hub: gw.hub,
    metrics: gw.metrics,
    broker: gw.broker,
    shutdown: gw.shutdown,
    config,
    wsUrl: gw.url.replace(/^http/, 'ws'),
    epoch,
    cursor: (u, b) => `${epoch}.${u}.${b}`,
  };
}
