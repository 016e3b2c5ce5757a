/** Transport registry: `--transport sse|ws|poll|socketio` picks a factory by name. */
import { usageError } from '../errors.js';
import { PollTransport } from './poll.js';
import { SocketioTransport } from './socketio.js';
import { SseTransport } from './sse.js';
import type { Transport, TransportFactory, TransportOptions, TransportSink } from './transport.js';
import { WsTransport } from './ws.js';

export * from './transport.js';
export { probeOf } from './probe.js';

const registry = new Map<string, TransportFactory>([
  ['sse', (sink, options) => new SseTransport(sink, options)],
  ['ws', (sink, options) => new WsTransport(sink, options)],
  ['poll', (sink, options) => new PollTransport(sink, options)],
  ['socketio', (sink, options) => new SocketioTransport(sink, options)],
]);

export function transportNames(): string[] {
  return [...registry.keys()];
}

/** Unknown names fail as a usage error (exit 2) that lists the valid ones. */
export function createTransport(name: string, sink: TransportSink, options: TransportOptions = {}): Transport {
  const factory = registry.get(name);
  if (!factory) throw usageError(`--transport must be one of ${transportNames().join(', ')} (got "${name}")`);
  return factory(sink, options);
}
