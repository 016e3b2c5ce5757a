/**
 * Where each of a worker's connections subscribes: its current --url rendered through the target profile, with its
 * user's token (`{token}`, minted from --jwt-secret) and its source address. Connections are spread over the --url
 * list and move on along it when their server is lost (`failOver`).
 */
import type { SubscribeTarget } from '../transports/index.js';
import { TRANSPORT_NAMES } from '../protocol/transports.js';
import { subscribeRenderer } from '../targets/subscribe.js';
import { tokenMinter } from '../targets/token.js';
import type { WorkerPlan } from './messages.js';

export class ConnectionTargets {
  /** Per transport, the profile's subscribe block compiled for rendering a connection's target. */
  private readonly render: (ReturnType<typeof subscribeRenderer> | undefined)[];
  /** Index into `plan.urls` of the server each connection subscribes to now. */
  private readonly urlOf: Uint16Array;
  private readonly targets: (SubscribeTarget | undefined)[];
  private readonly token: ((user: string) => string) | undefined;

  /** Throws when the profile cannot render (the worker's start fails with it). */
  constructor(
    private readonly plan: WorkerPlan,
    /** Transport of each connection (an index into TRANSPORT_NAMES). */
    private readonly kind: Uint8Array,
  ) {
    this.render = TRANSPORT_NAMES.map((name) => (plan.target.subscribe[name] ? subscribeRenderer(plan.target, name) : undefined));
    this.urlOf = new Uint16Array(plan.conns);
    this.targets = new Array<SubscribeTarget | undefined>(plan.conns);
    this.token = plan.jwtSecret === undefined ? undefined : tokenMinter(plan.jwtSecret);
  }

  userOf(i: number): string {
    return `${this.plan.userPrefix}${(i % this.plan.users) + 1}`;
  }

  /** Gives connection i its first server, round-robin over the --url list. */
  place(i: number): void {
    this.urlOf[i] = i % this.plan.urls.length;
    this.targets[i] = this.targetOf(i);
  }

  of(i: number): SubscribeTarget {
    return this.targets[i]!;
  }

  /**
   * Connection i lost its server (an attempt failed, or the server ended or broke the stream; not the swarm's own
   * abort or close): its next attempts, on the usual reconnect schedule, go to the next --url, round-robin, and resume
   * there by cursor (gateways that share a broker share cursors, so nothing is lost when the history has it).
   */
  failOver(i: number): void {
    const n = this.plan.urls.length;
    if (n < 2) return;
    this.urlOf[i] = (this.urlOf[i]! + 1) % n;
    this.targets[i] = this.targetOf(i);
  }

  private targetOf(i: number): SubscribeTarget {
    const p = this.plan;
    const user = this.userOf(i);
    return {
      ...this.render[this.kind[i]!]!({ base: p.urls[this.urlOf[i]!]!, user, token: this.token?.(user) }),
      localAddress: p.localAddresses.length ? p.localAddresses[i % p.localAddresses.length] : undefined,
    };
  }
}
