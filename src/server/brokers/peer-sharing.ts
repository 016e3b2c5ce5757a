/**
 * What the shared brokers (Redis, NATS) hand to their peers object, the part of each that talks to the other gateway
 * instances (redis-peers.ts, nats-peers.ts): reads made elsewhere, and the audience questions behind `delivered`.
 */
import type { ReadReceipt } from '../read-store.js';
import type * as B from './broker.js';

/** A broker's link to the other instances sharing it. */
export interface Peers {
  onRemoteRead(listener: (receipt: ReadReceipt) => void): void;
  countLocal(count: (streams: string[]) => number[]): void;
  audience(streams: string[]): Promise<number[]>;
}

/** A broker whose read receipts and audience counts go through its `peers`. */
export abstract class PeerSharingBroker implements Pick<B.ReadSharing, 'onRemoteRead'>, B.AudienceCounting {
  protected abstract readonly peers: Peers;

  onRemoteRead(listener: (receipt: ReadReceipt) => void): void {
    this.peers.onRemoteRead(listener);
  }

  countLocal(count: (streams: string[]) => number[]): void {
    this.peers.countLocal(count);
  }

  audience(streams: string[]): Promise<number[]> {
    return this.peers.audience(streams);
  }
}
