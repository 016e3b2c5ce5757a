/**
 * A profile's subscribe side as a swarm worker uses it: per transport, its templates compiled once and rendered per
 * connection into the `SubscribeTarget` the transport opens, and the decoder it takes. What travels to a worker is
 * the plain `SubscribePlan` (JSON over IPC), so workers never read profile files.
 */
import { TRANSPORT_NAMES, type TransportName } from '../protocol/transports.js';
import type { GenericSpec } from '../transports/decode-generic.js';
import type { SubscribeTarget } from '../transports/transport.js';
import type { SubscribeBlocks, TargetProfile } from './schema.js';
import { FIELD_PLACEHOLDERS, Template, type TemplateValues } from './template.js';

export interface SubscribePlan {
  dialect: TargetProfile['dialect'];
  streams: TargetProfile['streams'];
  subscribe: SubscribeBlocks;
}

export function subscribePlan(profile: TargetProfile): SubscribePlan {
  return { dialect: profile.dialect, streams: profile.streams, subscribe: profile.subscribe };
}

/** The transports a profile can subscribe with, in TRANSPORT_NAMES order. */
export function profileTransports(profile: Pick<TargetProfile, 'subscribe'>): TransportName[] {
  return TRANSPORT_NAMES.filter((t) => profile.subscribe[t] !== undefined);
}

/** What the connection of a user renders from: `--url` (no trailing slash), the user, its token when minted. */
type Values = Required<Pick<TemplateValues, 'base' | 'user'>> & Pick<TemplateValues, 'token'>;
type Render = (values: Values) => Omit<SubscribeTarget, 'localAddress'>;

const ALLOWED = FIELD_PLACEHOLDERS.subscribe;

/**
 * Headers, each sent only when it renders to something: a header that uses `{token}` is left out when the run mints
 * no token (no --jwt-secret), so one profile serves servers with and without auth.
 */
function headerTemplates(field: string, headers: Record<string, string> | undefined): (values: Values) => Record<string, string> {
  const list = Object.entries(headers ?? {}).map(([name, text]) => [name.toLowerCase(), new Template(text, `${field}.${name}`, ALLOWED)] as const);
  return (values) => {
    const out: Record<string, string> = {};
    for (const [name, t] of list) {
      if (t.uses('token') && values.token === undefined) continue;
      const v = t.render(values);
      if (v.trim() !== '') out[name] = v;
    }
    return out;
  };
}

const stringMap = (field: string, map: Record<string, string> | undefined) => {
  const list = Object.entries(map ?? {}).map(([k, text]) => [k, new Template(text, `${field}.${k}`, ALLOWED)] as const);
  return (values: Values) => Object.fromEntries(list.map(([k, t]) => [k, t.render(values)]));
};

/** Renders one transport's subscribe block for a connection; the block must exist (profileTransports). */
export function subscribeRenderer(plan: SubscribePlan, transport: TransportName): Render {
  const block = plan.subscribe[transport];
  if (block === undefined) throw new Error(`target profile has no subscribe.${transport}`);
  const field = `subscribe.${transport}`;
  const broadcastOnly = plan.streams.length === 1 && plan.streams[0] === 'broadcast';
  const url = new Template(broadcastOnly && block.broadcastUrl ? block.broadcastUrl : block.url, `${field}.url`, ALLOWED);
  const headers = headerTemplates(`${field}.headers`, block.headers);
  const resume = block.resume;
  const common = (v: Values) => ({ url: url.render(v), path: '', headers: headers(v), resume });
  const ws = transport === 'ws' ? plan.subscribe.ws : undefined;
  if (ws !== undefined) {
    const send = (ws.send ?? []).map((s, i) => new Template(s, `${field}.send.${i}`, ALLOWED));
    return (v) => ({ ...common(v), protocols: ws.protocols, send: send.length > 0 ? send.map((t) => t.render(v)) : undefined });
  }
  const sio = transport === 'socketio' ? plan.subscribe.socketio : undefined;
  if (sio !== undefined) {
    const auth = stringMap(`${field}.auth`, sio.auth);
    const query = stringMap(`${field}.query`, sio.query);
    const emit = (sio.emit ?? []).map((e, i) => e.map((s, j) => new Template(s, `${field}.emit.${i}.${j}`, ALLOWED)));
    return (v) => ({ ...common(v), socketio: { path: sio.path, auth: auth(v), query: query(v), emit: emit.map((e) => e.map((t) => t.render(v))) } });
  }
  return common;
}

/** The decoder options for a transport: undefined for the notify dialect (the transports' own fast path). */
export function genericSpec(plan: SubscribePlan, transport: TransportName): GenericSpec | undefined {
  if (plan.dialect === 'notify') return undefined;
  const { sse, ws, socketio } = plan.subscribe;
  if (transport === 'sse' && sse) return { events: sse.events, batchEvents: sse.batchEvents };
  if (transport === 'ws' && ws) return { frames: ws.frames };
  if (transport === 'socketio' && socketio) return { events: socketio.events };
  return {};
}
