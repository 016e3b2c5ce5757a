/**
 * `probeOnly`: the probes of notifications read straight from the JSON text, without building the notifications.
 * JSON.parse of each ~200-byte notification was the largest self time of a swarm worker (13% at 2,000 SSE
 * connections), and the swarm needs only `data.probe`.
 *
 * The scan answers only when it is certain; otherwise the caller parses in full, as without `probeOnly`. Certain
 * means the text matches the grammar below, which is a subset of JSON, so the text is valid JSON and the probe read
 * is the one `JSON.parse(text).data.probe` would give, and that probe passes probeOf's shape rules:
 * - strings hold no backslash and no control character: no escapes, so every `"` ends a string, text inside a
 *   string can never read as a key, and a key is its raw text (`"\u0064ata"` would be `data` to JSON.parse);
 * - no whitespace between tokens (JSON.stringify writes none);
 * - a notification is an object of scalar members (string, number, true, false, null) plus exactly one `data`
 *   object, whose members are scalars plus exactly one `probe`: `{"run":"..","stream":"..","seq":N,"t":N}` in
 *   that order (JSON.stringify of the publisher's probe), seq an integer >= 1 written without fraction or exponent,
 *   t finite. A repeated `data` or `probe` key (JSON.parse keeps the last) does not match;
 * - the envelopes notify serve writes around notifications (SSE batch array, WS frames, long-poll answers), key order
 *   included.
 * Nested objects elsewhere in a notification, another key order, or anything else: not certain, parsed in full.
 * The grammar is run as regular expressions (native code, linear: tokens cannot overlap because strings hold no
 * quote); they only test, so the scan allocates the probe object and its two strings and nothing else.
 */
import type { Probe } from '../protocol/probe.js';
import { WS_FRAME_HEAD } from '../protocol/events.js';

const STRING_BODY = String.raw`[^"\\\x00-\x1f]*`;
const NUMBER = String.raw`-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?`;
const SCALAR = `(?:"${STRING_BODY}"|${NUMBER}|true|false|null)`;
/** A member with a scalar value whose key is not `key`. */
const memberNot = (key: string) => `"(?!${key}")${STRING_BODY}":${SCALAR}`;
const ROOT_MEMBER = memberNot('data');
const DATA_MEMBER = memberNot('probe');

/** From a notification's `{` to the first character of its probe's run. */
const HEAD = new RegExp(String.raw`\{(?:${ROOT_MEMBER},)*"data":\{(?:${DATA_MEMBER},)*"probe":\{"run":"`, 'y');
/** From the probe's run to just past the notification's `}`. */
const TAIL = new RegExp(String.raw`${STRING_BODY}","stream":"${STRING_BODY}","seq":[1-9]\d*,"t":${NUMBER}\}(?:,${DATA_MEMBER})*\}(?:,${ROOT_MEMBER})*\}`, 'y');
/** The rest of a string (its body and closing quote). */
const STRING_REST = new RegExp(`${STRING_BODY}"`, 'y');

const COMMA = 44;
const ZERO = 48;
const LBRACKET = 91;
const RBRACKET = 93;
const RBRACE = 125;

/**
 * One per transport, reused for every message (single-threaded). Each method returns the probes when it is certain
 * of them, else undefined: then nothing is certain and the text must be parsed in full.
 */
export class ProbeScanner {
  /** The envelope's cursor after a successful `wsFrame` or `pollAnswer` (read it before the next scan). */
  cursor = '';
  private s = '';
  private i = 0;

  /** SSE `notification` data: one notification object. */
  notification(text: string): Probe | undefined {
    this.s = text;
    this.i = 0;
    const probe = this.note();
    return this.i === text.length ? probe : undefined;
  }

  /** SSE `notifications:batch` data: an array of notifications. */
  list(text: string): Probe[] | undefined {
    this.s = text;
    this.i = 0;
    const probes = this.notes();
    return this.i === text.length ? probes : undefined;
  }

  /**
   * A WS frame as notify serve writes it: `{"type":"notification","cursor":"<c>","notification":{...}}` (one
   * probe) or `{"type":"notifications:batch","cursor":"<c>","notifications":[...]}` (an array), in that key order.
   */
  wsFrame(text: string): Probe | Probe[] | undefined {
    this.s = text;
    let found: Probe | Probe[] | undefined;
    if (text.startsWith(WS_FRAME_HEAD.notification)) {
      this.i = WS_FRAME_HEAD.notification.length;
      if (!this.cursorRest() || !this.skip(',"notification":')) return undefined;
      found = this.note();
    } else if (text.startsWith(WS_FRAME_HEAD.batch)) {
      this.i = WS_FRAME_HEAD.batch.length;
      if (!this.cursorRest() || !this.skip(',"notifications":')) return undefined;
      found = this.notes();
    } else {
      return undefined;
    }
    return this.closes() ? found : undefined;
  }

  /**
   * A long-poll answer that carries only notifications: `{"cursor":"<c>","notifications":[...]}`. Snapshots,
   * resets and answers with read receipts have more keys and are parsed in full.
   */
  pollAnswer(text: string): Probe[] | undefined {
    if (!text.startsWith('{"cursor":"')) return undefined;
    this.s = text;
    this.i = 11;
    if (!this.cursorRest() || !this.skip(',"notifications":')) return undefined;
    const probes = this.notes();
    return this.closes() ? probes : undefined;
  }

  /** Past `literal` when it comes next. */
  private skip(literal: string): boolean {
    if (!this.s.startsWith(literal, this.i)) return false;
    this.i += literal.length;
    return true;
  }

  /** Whether the envelope's `}` comes next and ends the text. */
  private closes(): boolean {
    return this.i === this.s.length - 1 && this.s.charCodeAt(this.i) === RBRACE;
  }

  /** The envelope's cursor: from its first character to past its closing quote. */
  private cursorRest(): boolean {
    const start = this.i;
    if (!matches(STRING_REST, this.s, start)) return false;
    this.i = STRING_REST.lastIndex;
    this.cursor = this.s.slice(start, this.i - 1);
    return true;
  }

  /** `[` notification (`,` notification)* `]`, or `[]`: one probe each, with `i` past the `]`. */
  private notes(): Probe[] | undefined {
    const s = this.s;
    if (s.charCodeAt(this.i) !== LBRACKET) return undefined;
    const probes: Probe[] = [];
    if (s.charCodeAt(++this.i) === RBRACKET) {
      this.i++;
      return probes;
    }
    for (;;) {
      const probe = this.note();
      if (probe === undefined) return undefined;
      probes.push(probe);
      const c = s.charCodeAt(this.i++);
      if (c === RBRACKET) return probes;
      if (c !== COMMA) return undefined;
    }
  }

  /** One notification at `i`: its probe, with `i` past its `}`; undefined (and `i` unchanged) when not certain. */
  private note(): Probe | undefined {
    const s = this.s;
    if (!matches(HEAD, s, this.i)) return undefined;
    const run = HEAD.lastIndex;
    if (!matches(TAIL, s, run)) return undefined;
    // TAIL matched `<run>","stream":"<stream>","seq":<digits>,"t":<number>}`: the ends are the next `"`, `"`, `,`, `}`.
    const runEnd = s.indexOf('"', run);
    const stream = runEnd + 12;
    const streamEnd = s.indexOf('"', stream);
    const seq = streamEnd + 8;
    const seqEnd = s.indexOf(',', seq);
    const t = seqEnd + 5;
    const tEnd = s.indexOf('}', t);
    // probeOf's rules. The grammar made seq digits without sign or fraction; up to 15 of them add up exactly.
    if (seqEnd - seq > 15) return undefined;
    let seqValue = 0;
    for (let k = seq; k < seqEnd; k++) seqValue = seqValue * 10 + s.charCodeAt(k) - ZERO;
    // A JSON number may overflow to Infinity.
    const tValue = Number(s.slice(t, tEnd));
    if (!Number.isFinite(tValue)) return undefined;
    this.i = TAIL.lastIndex;
    return { run: s.slice(run, runEnd), stream: s.slice(stream, streamEnd), seq: seqValue, t: tValue };
  }
}

/** Whether sticky `re` matches at `at` (then `re.lastIndex` is past the match). */
function matches(re: RegExp, s: string, at: number): boolean {
  re.lastIndex = at;
  try {
    return re.test(s);
  } catch {
    // Irregexp runs out of backtrack stack on millions of members (RangeError): not certain, so parse in full.
    return false;
  }
}
