/** Broker registry: `--broker memory|redis://..|nats://..` picks a factory by URL scheme. */
import { usageError } from '../../errors.js';
import type { Broker, BrokerFactory, BrokerOptions } from './broker.js';
import { MemoryBroker } from './memory.js';
import { NatsBroker } from './nats.js';
import { RedisBroker } from './redis.js';

const registry = new Map<string, BrokerFactory>([
  ['memory', (_url, options) => new MemoryBroker(options)],
  ['nats', (url, options) => new NatsBroker(url, options)],
  ['redis', (url, options) => new RedisBroker(url, options)],
]);

export function registerBroker(scheme: string, factory: BrokerFactory): void {
  registry.set(scheme, factory);
}

export function brokerScheme(url: string): string {
  return url === 'memory' ? 'memory' : url.split(':', 1)[0]!;
}

export function createBroker(url: string, options: BrokerOptions): Broker {
  const factory = registry.get(brokerScheme(url));
  if (!factory) {
    throw usageError(`--broker must be one of ${[...registry.keys()].join(', ')} (got "${url}")`);
  }
  return factory(url, options);
}
