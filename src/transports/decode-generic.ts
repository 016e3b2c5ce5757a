/**
 * The generic decoder: what a target profile with `dialect: generic` (every built-in but `notify`) uses to turn the
 * frames a transport carries into the sink's events. It knows no envelope: each message is searched for probes
 * (probe-find.ts), and the cursor a reconnect hands back is the message's own id (SSE `id:`, nchan's WebSocket
 * meta id, a long-poll answer's Etag) or else the id of the notification that held the last probe.
 *
 * The transports call it with their per-connection state as a `Receiver`; a sink call may end or reopen the
 * connection, so `live()` is checked before each further probe of one message.
 */
import { findProbes, findProbesInText, type Found } from './probe-find.js';
import { ProbeScanner } from './probe-scan.js';
import type { TransportSink } from './transport.js';

/** What a transport's connection state offers the decoder. */
export interface Receiver {
  readonly conn: number;
  /** The position to resume from; the decoder sets it from what it reads. */
  cursor: string | undefined;
  /** False once the attempt being decoded is no longer the connection's live one. */
  live(): boolean;
}

/** The decoding part of a subscribe block (src/targets/schema.ts), as it travels to a worker. */
export interface GenericSpec {
  /** SSE event names that carry notifications; absent: every event (named or not). */
  events?: string[];
  /** SSE event names whose data is an array of notifications (searched the same way). */
  batchEvents?: string[];
  /** WebSocket frame layout. */
  frames?: 'json' | 'nchan-meta';
}

/** A nchan `ws+meta.nchan` frame: `id: <id>\n`, optional `content-type: <type>\n`, a blank line, the message. */
const NCHAN_META = /^id: ([^\n]*)\n(?:content-type: [^\n]*\n)?\n/;

export class GenericDecoder {
  private readonly events: Set<string> | undefined;
  /** Reused for every message (single-threaded). */
  private readonly found: Found = { probes: [], ids: [] };
  private readonly scanner = new ProbeScanner();

  constructor(
    private readonly sink: TransportSink,
    private readonly spec: GenericSpec = {},
  ) {
    this.events = spec.events || spec.batchEvents ? new Set([...(spec.events ?? []), ...(spec.batchEvents ?? [])]) : undefined;
  }

  /** One SSE event. Events the profile does not name are ignored, as EventSource ignores unknown names. */
  sse(r: Receiver, event: string | undefined, data: string, id: string | undefined, at: number): void {
    const name = event === undefined || event === '' ? 'message' : event;
    if (this.events !== undefined && !this.events.has(name)) return;
    if (id !== undefined && id !== '') r.cursor = id;
    const fast = this.scan(data);
    if (fast !== undefined) return this.emit(r, fast, id, at);
    const found = findProbesInText(data, this.reset());
    if (found === undefined) {
      // Named by the profile as a notification event, yet not JSON: the profile or the server is wrong; say so.
      if (this.events !== undefined) this.sink.notification(r.conn, {}, id, at);
      else this.sink.unparsable?.(r.conn);
      return;
    }
    if (found.probes.length === 0) {
      if (this.events !== undefined) this.sink.notification(r.conn, {}, id, at);
      return;
    }
    this.emit(r, found, id, at);
  }

  /** One WebSocket text frame (or one long-poll body, with `cursor` from the answer's headers). */
  text(r: Receiver, text: string, at: number, cursor?: string): void {
    let body = text;
    let id = cursor;
    if (this.spec.frames === 'nchan-meta') {
      const m = NCHAN_META.exec(text);
      if (m === null) return this.sink.unparsable?.(r.conn);
      id = m[1]!;
      body = text.slice(m[0].length);
    }
    if (body.length === 0) return;
    // The swarm's own payload as published: its probe and id read from the text (scan), with nothing left to find.
    const fast = id !== undefined || !body.includes('"cursor":') ? this.scan(body) : undefined;
    if (fast !== undefined) {
      id ??= fast.ids[0];
      if (id !== undefined) r.cursor = id;
      return this.emit(r, fast, id, at);
    }
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch {
      return this.sink.unparsable?.(r.conn);
    }
    if (id === undefined && typeof value === 'object' && value !== null) {
      const c = (value as { cursor?: unknown }).cursor;
      if (typeof c === 'string') id = c;
    }
    const found = findProbes(value, this.reset());
    if (id === undefined && found.ids.length > 0) id = found.ids[found.ids.length - 1];
    if (id !== undefined) r.cursor = id;
    if (found.probes.length > 0) this.emit(r, found, id, at);
  }

  /**
   * The arguments of one Socket.IO event the profile names: already parsed values, searched as they are. An event
   * without a probe reaches the sink as a notification without one (counted as `no-probe`).
   */
  values(r: Receiver, args: readonly unknown[], at: number): void {
    const found = this.reset();
    for (const a of args) findProbes(a, found);
    const id = found.ids.length > 0 ? found.ids[found.ids.length - 1] : undefined;
    if (id !== undefined) r.cursor = id;
    if (found.probes.length === 0) return this.sink.notification(r.conn, {}, id, at);
    this.emit(r, found, id, at);
  }

  /**
   * What findProbes(JSON.parse(text)) finds, read without parsing, when that is certain; else undefined (parse in
   * full). ProbeScanner certifies the text is valid JSON of one notification object whose `data.probe` is a probe,
   * with no escapes, so a `"key":` in the text is a key. What else findProbes would see: the root as a probe itself
   * (only with a `run` key of its own: a second `"run":`), and the notification's id (the root's, or `data`'s when it
   * has one). The id is read only as the root's first member, a string; an `"id":` anywhere else is not certain.
   */
  private scan(text: string): Found | undefined {
    const probe = this.scanner.notification(text);
    if (probe === undefined || text.indexOf('"run":') !== text.lastIndexOf('"run":')) return undefined;
    const at = text.indexOf('"id":');
    let id: string | undefined;
    if (at !== -1) {
      if (at !== 1 || text.charCodeAt(6) !== 34 || text.indexOf('"id":', 6) !== -1) return undefined;
      id = text.slice(7, text.indexOf('"', 7));
    }
    const found = this.reset();
    found.probes.push(probe);
    found.ids.push(id);
    return found;
  }

  private reset(): Found {
    this.found.probes.length = 0;
    this.found.ids.length = 0;
    return this.found;
  }

  private emit(r: Receiver, found: Found, cursor: string | undefined, at: number): void {
    const { probes, ids } = found;
    const last = probes.length - 1;
    for (let i = 0; i <= last && r.live(); i++) {
      this.sink.notification(r.conn, { id: ids[i], data: { probe: probes[i] } }, i === last ? cursor : undefined, at);
    }
  }
}
