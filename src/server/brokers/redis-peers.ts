/**
 * What Redis carries between gateway instances besides live events: read receipts (`notify:reads`, see
 * redis-reads.ts) and the audience questions behind `delivered` (`notify:audience`, answered on each asker's own
 * `notify:audience:<instance>`; see audience.ts). PUBLISH answers how many subscriber connections got a question,
 * so the asker knows how many answers to wait for.
 */
import type { Redis } from 'ioredis';
import type { HttpError } from '../http-error.js';
import type { ReadReceipt } from '../read-store.js';
import { AudiencePoll } from './audience.js';
import type { Peers } from './peer-sharing.js';
import { READS_CHANNEL, RedisReadStore } from './redis-reads.js';

const ASK_CHANNEL = 'notify:audience';
const answerChannel = (instance: string): string => `notify:audience:${instance}`;

export class RedisPeers implements Peers {
  readonly reads: RedisReadStore;
  private readonly poll: AudiencePoll;
  /** The channels the broker's subscriber connection must hold for these. */
  readonly channels: string[];

  constructor(
    private readonly client: Redis,
    instance: string,
    fail: (err: unknown) => HttpError,
  ) {
    this.reads = new RedisReadStore(client, instance, fail);
    this.poll = new AudiencePoll(instance);
    this.channels = [READS_CHANNEL, ASK_CHANNEL, answerChannel(instance)];
  }

  /** A message on one of `channels` but READS_CHANNEL (the broker orders those with its live events). */
  onMessage(channel: string, text: string): void {
    if (channel === ASK_CHANNEL) {
      const a = this.poll.answer(text);
      if (a) this.client.publish(answerChannel(a.to), a.text).catch(() => undefined);
    } else this.poll.onAnswer(text);
  }

  onRemoteRead(listener: (receipt: ReadReceipt) => void): void {
    this.reads.onRemoteRead(listener);
  }

  countLocal(count: (streams: string[]) => number[]): void {
    this.poll.countLocal(count);
  }

  audience(streams: string[]): Promise<number[]> {
    return this.poll.ask(streams, (question) => this.client.publish(ASK_CHANNEL, question));
  }
}
