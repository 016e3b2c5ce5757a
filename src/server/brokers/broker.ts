/**
 * The Broker: where events get their sequence numbers, where history lives, and how live events reach every
 * server process. The gateway never knows which broker it has (memory now; Redis Streams and NATS JetStream
 * implement the same contract for scale-out).
 */
import type { Notification } from '../../protocol/notification.js';
import type { ReadReceipt, ReadStore } from '../read-store.js';

export interface StreamEvent {
  /** `broadcast` or `user:<id>`. */
  stream: string;
  /** 1, 2, 3 ... within the stream and epoch. */
  seq: number;
  notification: Notification;
  /** `notification` serialised once, shared by every connection that gets it. */
  json: string;
  /** performance.now() when the publish was accepted (same process) or received from the broker. */
  acceptedAt: number;
  /** Set by the hub after fan-out in this process: live connections the event was written to. */
  delivered?: number;
}

export interface PublishItem {
  stream: string;
  /** Everything but `id` (the broker assigns it). */
  notification: Omit<Notification, 'id'>;
}

export interface HistoryRead {
  /** Events with seq > after, oldest first. */
  events: StreamEvent[];
  /** False when events after `after` have left the window: the reader must be told (reset). */
  complete: boolean;
  /** Latest seq of the stream (0 when empty). */
  lastSeq: number;
}

export interface Broker {
  readonly kind: string;
  start(): Promise<void>;
  /** Random; changes whenever the history is lost. */
  epoch(): string;
  /** Assigns seq and id, stores in history, then resolves; live delivery happens through `onEvents`. */
  publish(items: PublishItem[]): Promise<StreamEvent[]>;
  /** History of a stream after a position. */
  readAfter(stream: string, after: number): Promise<HistoryRead>;
  /** Latest seq of each stream (0 when empty). */
  lastSeq(stream: string): Promise<number>;
  /** Events still in the history window of a stream, newest last. */
  recent(stream: string, limit: number): Promise<StreamEvent[]>;
  /** Looks an event up by notification id while it is in the history window. */
  find(id: string): Promise<StreamEvent | undefined>;
  /** Live events, in seq order per stream, as published by any process sharing this broker. */
  onEvents(listener: (events: StreamEvent[]) => void): void;
  close(): Promise<void>;
}

export interface BrokerOptions {
  /** Events kept per stream (`--history`). */
  history: number;
  /** Bytes all streams' history may hold together (`--history-bytes`); past it the oldest events go first. */
  historyBytes: number;
}

export type BrokerFactory = (url: string, options: BrokerOptions) => Broker;

/** What a broker reports when live delivery lost events it cannot fill from history. */
export interface Loss {
  /**
   * `window`: these streams' missed events left the history; `epoch`: the history itself is gone (every stream);
   * `unavailable`: the history could not be read to fill the gap (the subscribers' own resume will).
   */
  reason: 'window' | 'epoch' | 'unavailable';
  /** Absent for `epoch`: every stream is affected. */
  streams?: string[];
}

/** Optional capability: a shared broker whose live delivery can miss events (an outage); those subscribers must resume. */
export interface LossReporting {
  onLost(listener: (loss: Loss) => void): void;
}

/** Optional capability: a broker that can be unreachable (then `/readyz` says not ready). */
export interface ReadinessReporting {
  ready(): boolean;
}

/**
 * Optional capability: a shared broker that keeps read marks for every instance (its `reads` marks a read and tells
 * the other instances), and hands this instance the receipts of reads made elsewhere.
 */
export interface ReadSharing {
  readonly reads: ReadStore;
  /** Reads made on other instances; this instance's own reach its connections where they happen, never twice. */
  onRemoteRead(listener: (receipt: ReadReceipt) => void): void;
}

/** Optional capability: a shared broker that can count live subscriptions on every instance that shares it. */
export interface AudienceCounting {
  /** How this instance answers the others' questions: its live subscriptions of each stream. */
  countLocal(count: (streams: string[]) => number[]): void;
  /** The live subscriptions of each stream summed over every instance that answered in time (this one too). */
  audience(streams: string[]): Promise<number[]>;
}

/**
 * Optional capability: a broker whose history lives in this process and answers at once (memory). The same answers as
 * `lastSeq` and `recent`, without a promise: a fresh subscription is then set up in one go, with no await between
 * joining the hub and its snapshot (nothing can be published in between, so nothing needs queuing either).
 */
export interface SyncHistory {
  lastSeqNow(stream: string): number;
  recentNow(stream: string, limit: number): StreamEvent[];
}

export function isSyncHistory(broker: Broker): broker is Broker & SyncHistory {
  return typeof (broker as Partial<SyncHistory>).recentNow === 'function' && typeof (broker as Partial<SyncHistory>).lastSeqNow === 'function';
}

export function isLossReporting(broker: Broker): broker is Broker & LossReporting {
  return typeof (broker as Partial<LossReporting>).onLost === 'function';
}

export function isReadinessReporting(broker: Broker): broker is Broker & ReadinessReporting {
  return typeof (broker as Partial<ReadinessReporting>).ready === 'function';
}

export function isReadSharing(broker: Broker): broker is Broker & ReadSharing {
  return typeof (broker as Partial<ReadSharing>).onRemoteRead === 'function';
}

export function isAudienceCounting(broker: Broker): broker is Broker & AudienceCounting {
  return typeof (broker as Partial<AudienceCounting>).audience === 'function';
}
